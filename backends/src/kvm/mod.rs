//! Direct launch under KVM (Linux x86_64): guest memory from the plan, the kernel's segments
//! and the initrd streamed from their files, the boot structures of [`loader::boot`], one
//! thread per vCPU, an in-kernel IRQ chip and PIT, a 16550 UART on COM1, the i8042 reset line
//! and QEMU's isa-debug-exit port.
//!
//! Built on rust-vmm's `kvm-ioctls`, `vm-memory` and `vm-superio`. The set-up order and every
//! quirk handled here were measured first (`docs/spikes/kvm-probe-findings.md`): memory slots
//! before the IRQ chip (registering them after costs ~5 ms), the PIT after the IRQ chip
//! (ENOENT otherwise), no KVM_SET_TSC_KHZ (EINVAL without TSC scaling), EAGAIN from an AP's
//! first KVM_RUN, and only a signal, not `immediate_exit` alone, interrupting a running vCPU.
//!
//! How a run ends, and the status `anyboot run` gives it, is [`Exit`].

mod console;
pub mod cpu;
pub mod devices;

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kvm_bindings::{
    KVM_MP_STATE_HALTED, KVM_MP_STATE_INIT_RECEIVED, KVM_MP_STATE_UNINITIALIZED,
    KVM_PIT_SPEAKER_DUMMY, KVM_SYSTEM_EVENT_CRASH, KVM_SYSTEM_EVENT_RESET,
    KVM_SYSTEM_EVENT_SHUTDOWN, kvm_pit_config, kvm_userspace_memory_region,
};
use kvm_ioctls::{Kvm, VcpuExit, VcpuFd, VmFd};
use loader::boot::{self, BootSetup};
use loader::plan::{BootPlan, Protocol};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};
use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};
use vmm_sys_util::signal::{Killable, SIGRTMIN, register_signal_handler};

pub use console::ConsoleMode;
use devices::{Devices, IoAction, IrqLine, SerialOut};

/// How often the control thread asks the vCPUs whether they are halted for good (a guest that
/// has halted with interrupts off stays in the kernel's HLT loop; nothing else reports it).
const HALT_PROBE_INTERVAL: Duration = Duration::from_millis(25);
/// How long to wait for the vCPU threads to stop after the run has ended.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Why a KVM launch could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KvmError {
    /// /dev/kvm cannot be used.
    #[error("/dev/kvm: {0}")]
    Unavailable(#[source] kvm_ioctls::Error),
    /// A KVM ioctl failed.
    #[error("{what}: {source}")]
    Ioctl {
        /// The ioctl.
        what: &'static str,
        /// The error.
        #[source]
        source: kvm_ioctls::Error,
    },
    /// Guest memory could not be mapped or written.
    #[error("guest memory: {0}")]
    Memory(String),
    /// A file the plan names cannot be read as planned.
    #[error("{}: {what}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What was being read.
        what: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The boot structures cannot be built.
    #[error(transparent)]
    Boot(#[from] boot::BootError),
    /// Anything else in the set-up.
    #[error("{0}")]
    Setup(String),
    /// A host resource (thread, eventfd, signal handler) could not be had.
    #[error("{what}: {source}")]
    Host {
        /// What.
        what: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
}

impl KvmError {
    fn ioctl(what: &'static str, source: kvm_ioctls::Error) -> KvmError {
        KvmError::Ioctl { what, source }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// Every vCPU halted with interrupts off, or the guest asked KVM to power off. Status 0.
    Halted,
    /// The guest wrote `value` to the debug-exit port. Status `(value << 1) | 1`, as QEMU's
    /// isa-debug-exit.
    DebugExit(u32),
    /// The guest reset the machine (i8042 reset, triple fault, KVM reset event). Status 3.
    Reset(String),
    /// The VM failed (KVM internal error, emulation failure, entry failure, unhandled exit).
    /// Status 4.
    Failed(String),
    /// `--timeout` expired. Status 124.
    Timeout,
    /// The user typed Ctrl-A x. Status 0, as QEMU's.
    Quit,
}

impl Exit {
    /// The process exit status `anyboot run` gives this outcome.
    pub fn status(&self) -> u8 {
        match self {
            Exit::Halted | Exit::Quit => 0,
            // As QEMU: the low byte of (v << 1) | 1.
            Exit::DebugExit(v) => (v.wrapping_shl(1) | 1).to_le_bytes()[0],
            Exit::Reset(_) => 3,
            Exit::Failed(_) => 4,
            Exit::Timeout => 124,
        }
    }

    /// A one-line description.
    pub fn describe(&self) -> String {
        match self {
            Exit::Halted => "guest halted".into(),
            Exit::DebugExit(v) => format!("guest wrote {v:#x} to the debug-exit port 0xf4"),
            Exit::Reset(why) => format!("guest reset: {why}"),
            Exit::Failed(why) => format!("VM failed: {why}"),
            Exit::Timeout => "timeout expired".into(),
            Exit::Quit => "quit from the console (Ctrl-A x)".into(),
        }
    }
}

/// Microsecond timings of one run, from `RunOptions::launch`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timings {
    /// To the boot vCPU's first KVM_RUN (the guest's first instruction follows at once).
    pub first_instruction_us: Option<u64>,
    /// To the guest's first byte on the serial port.
    pub first_serial_us: Option<u64>,
    /// To the moment the run's end was seen.
    pub exit_us: u64,
}

/// What a run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// How it ended.
    pub exit: Exit,
    /// Timings.
    pub timings: Timings,
    /// Bytes the guest wrote to the serial port.
    pub serial_bytes: u64,
    /// Port and MMIO accesses no device claimed.
    pub unclaimed_accesses: u64,
}

/// Where the guest's serial output goes.
#[derive(Debug, Clone)]
pub enum SerialSink {
    /// The process's stdout.
    Stdout,
    /// A buffer (tests, benchmarks).
    Buffer(Arc<std::sync::Mutex<Vec<u8>>>),
    /// Nowhere.
    Discard,
}

/// Options of one run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// When the launch started (the process's start, for `--time`).
    pub launch: Instant,
    /// End the run after this long.
    pub timeout: Option<Duration>,
    /// Serial output.
    pub serial: SerialSink,
    /// Console input.
    pub console: ConsoleMode,
    /// CPUID features hidden from the guest.
    pub cpu_disable: Vec<cpu::Feature>,
}

/// Check that /dev/kvm can create a VM; the error says why not.
pub fn probe() -> Result<(), KvmError> {
    let kvm = Kvm::new().map_err(KvmError::Unavailable)?;
    let _vm = kvm
        .create_vm()
        .map_err(|e| KvmError::ioctl("KVM_CREATE_VM", e))?;
    Ok(())
}

/// Guest memory as the layout's RAM ranges, each its own anonymous mapping.
fn guest_memory(plan: &BootPlan) -> Result<GuestMemoryMmap, KvmError> {
    let mem = plan
        .memory
        .size_mib
        .checked_mul(1 << 20)
        .ok_or_else(|| KvmError::Memory(format!("{} MiB overflows", plan.memory.size_mib)))?;
    let ranges: Vec<(GuestAddress, usize)> = loader::layout::ram_ranges(mem)
        .into_iter()
        .map(|(start, size)| {
            usize::try_from(size)
                .map(|s| (GuestAddress(start), s))
                .map_err(|_| KvmError::Memory(format!("range of {size:#x} bytes")))
        })
        .collect::<Result<_, _>>()?;
    GuestMemoryMmap::from_ranges(&ranges)
        .map_err(|e| KvmError::Memory(format!("mapping {} MiB: {e}", plan.memory.size_mib)))
}

fn file_err(path: &Path, what: impl Into<String>) -> impl FnOnce(io::Error) -> KvmError {
    let path = path.to_path_buf();
    let what = what.into();
    move |source| KvmError::File { path, what, source }
}

/// Copy `len` bytes of `path` from `offset` to guest `addr`, then zero `zero` bytes after them.
fn load_range(
    mem: &GuestMemoryMmap,
    path: &Path,
    file: &mut File,
    offset: u64,
    len: u64,
    addr: u64,
    zero: u64,
) -> Result<(), KvmError> {
    let end = addr
        .checked_add(len)
        .and_then(|e| e.checked_add(zero))
        .ok_or_else(|| KvmError::Memory(format!("range at {addr:#x} overflows")))?;
    if !GuestMemoryBackend::check_range(
        mem,
        GuestAddress(addr),
        usize::try_from(end - addr).unwrap_or(usize::MAX),
    ) {
        return Err(KvmError::Memory(format!(
            "{}: {addr:#x}..{end:#x} is not guest RAM",
            path.display()
        )));
    }
    let file_len = file.metadata().map_err(file_err(path, "stat"))?.len();
    if offset.checked_add(len).is_none_or(|e| e > file_len) {
        return Err(KvmError::File {
            path: path.to_path_buf(),
            what: format!("bytes {offset:#x}..+{len:#x} planned"),
            source: io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the file is {file_len} bytes (did it change since it was inspected?)"),
            ),
        });
    }
    file.seek(SeekFrom::Start(offset))
        .map_err(file_err(path, format!("seek to {offset:#x}")))?;
    let n = usize::try_from(len).map_err(|_| KvmError::Memory("length".into()))?;
    mem.read_exact_volatile_from(GuestAddress(addr), file, n)
        .map_err(|e| KvmError::Memory(format!("{}: copy to {addr:#x}: {e}", path.display())))?;
    // BSS. Fresh anonymous memory is already zero, but the loader does not rely on it.
    let zeros = [0u8; 64 * 1024];
    let mut at = addr + len;
    while at < end {
        let chunk = usize::try_from((end - at).min(zeros.len() as u64)).unwrap_or(zeros.len());
        mem.write_slice(&zeros[..chunk], GuestAddress(at))
            .map_err(|e| KvmError::Memory(format!("zeroing BSS at {at:#x}: {e}")))?;
        at += chunk as u64;
    }
    Ok(())
}

/// Load the kernel segments, the modules and the boot structures.
fn load(plan: &BootPlan, mem: &GuestMemoryMmap) -> Result<BootSetup, KvmError> {
    let image = &plan.boot_image;
    let mut file = File::open(image).map_err(file_err(image, "open"))?;
    for s in &plan.segments {
        load_range(
            mem,
            image,
            &mut file,
            s.file_offset,
            s.file_size,
            s.guest_addr,
            s.mem_size.saturating_sub(s.file_size),
        )?;
    }
    for m in &plan.modules {
        let mut f = File::open(&m.path).map_err(file_err(&m.path, "open"))?;
        load_range(mem, &m.path, &mut f, 0, m.size, m.addr, 0)?;
    }
    let setup =
        if plan.protocol == Protocol::Linux64 && plan.format == loader::inspect::Format::Bzimage {
            let mut hdr = vec![0u8; std::mem::size_of::<loader::abi::linux::SetupHeader>()];
            file.seek(SeekFrom::Start(
                loader::abi::linux::SETUP_HEADER_OFFSET as u64,
            ))
            .and_then(|_| file.read_exact(&mut hdr))
            .map_err(file_err(image, "read the setup header at 0x1f1"))?;
            Some(hdr)
        } else {
            None
        };
    let setup = boot::prepare(plan, setup.as_deref())?;
    for w in &setup.writes {
        mem.write_slice(&w.bytes, GuestAddress(w.addr))
            .map_err(|e| KvmError::Memory(format!("{} at {:#x}: {e}", w.what, w.addr)))?;
    }
    Ok(setup)
}

/// Register every RAM range as a memory slot.
fn register_memory(vm: &VmFd, mem: &GuestMemoryMmap) -> Result<(), KvmError> {
    for (slot, region) in mem.iter().enumerate() {
        let r = kvm_userspace_memory_region {
            slot: u32::try_from(slot).map_err(|_| KvmError::Setup("too many slots".into()))?,
            flags: 0,
            guest_phys_addr: region.start_addr().0,
            memory_size: region.len(),
            userspace_addr: region.as_ptr() as u64,
        };
        // SAFETY: the slot describes a live anonymous mapping owned by `mem`, which is held in
        // an `Arc` by this function's caller and by every vCPU thread; the VM (and with it the
        // slot) is only used by those threads, so the mapping outlives every use of the slot.
        unsafe { vm.set_user_memory_region(r) }
            .map_err(|e| KvmError::ioctl("KVM_SET_USER_MEMORY_REGION", e))?;
    }
    Ok(())
}

/// A message from a vCPU thread or the console to the control thread.
enum Event {
    /// The run is over.
    End(Exit),
    /// vCPU `id`'s answer to halt probe `round`: whether it is halted for good.
    Halted { round: u64, halted: bool },
}

/// Sends the end of the run when a vCPU thread unwinds without having sent one.
struct EndGuard {
    tx: mpsc::Sender<Event>,
    id: u8,
    armed: bool,
}

impl EndGuard {
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for EndGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.tx.send(Event::End(Exit::Failed(format!(
                "the thread of vCPU {} ended unexpectedly",
                self.id
            ))));
        }
    }
}

/// State shared by the control thread and the vCPU threads.
struct Shared {
    stop: AtomicBool,
    probe_round: AtomicU64,
    first_instruction: std::sync::Mutex<Option<Instant>>,
}

extern "C" fn kick_handler(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // Nothing to do: the signal's only job is to make KVM_RUN return EINTR.
}

fn install_kick_handler() -> Result<(), KvmError> {
    // The result of the one registration, remembered: a later run must not believe a failed
    // registration succeeded (SIGRTMIN's default action would end the process at the first
    // kick).
    static RESULT: std::sync::OnceLock<Result<(), i32>> = std::sync::OnceLock::new();
    let r = RESULT
        .get_or_init(|| register_signal_handler(SIGRTMIN(), kick_handler).map_err(|e| e.errno()));
    r.map_err(|errno| KvmError::Host {
        what: "installing the SIGRTMIN vCPU kick handler",
        source: io::Error::from_raw_os_error(errno),
    })
}

/// Whether a vCPU interrupted by a kick is halted for good: in HLT with interrupts off, or an
/// AP that was never started (waiting for INIT/SIPI).
fn halted_for_good(vcpu: &VcpuFd) -> bool {
    let Ok(mp) = vcpu.get_mp_state() else {
        return false;
    };
    match mp.mp_state {
        KVM_MP_STATE_UNINITIALIZED | KVM_MP_STATE_INIT_RECEIVED => true,
        KVM_MP_STATE_HALTED => vcpu.get_regs().is_ok_and(|r| r.rflags & (1 << 9) == 0),
        _ => false,
    }
}

fn internal_error(vcpu: &mut VcpuFd) -> String {
    let run = vcpu.get_kvm_run();
    // SAFETY: after a KVM_EXIT_INTERNAL_ERROR exit the kernel has filled in the `internal`
    // member of the exit-reason union; reading a plain-data union member is sound.
    let ie = unsafe { run.__bindgen_anon_1.internal };
    let n = (ie.ndata as usize).min(ie.data.len());
    let data = &ie.data[..n];
    let kind = match ie.suberror {
        1 => "emulation failure",
        2 => "simultaneous exceptions",
        3 => "delivery event",
        4 => "unexpected exit reason",
        _ => "unknown suberror",
    };
    let mut s = format!(
        "KVM internal error, suberror {} ({kind}), data [{}]",
        ie.suberror,
        data.iter()
            .map(|d| format!("{d:#x}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    // With KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES, data[1] holds the instruction
    // length and the bytes follow.
    if ie.suberror == 1 && data.first().is_some_and(|f| f & 1 != 0) && data.len() >= 2 {
        let bytes: Vec<u8> = data[1..].iter().flat_map(|d| d.to_le_bytes()).collect();
        let len = usize::from(bytes[0]).min(15).min(bytes.len() - 1);
        s += ", instruction bytes ";
        for b in &bytes[1..=len] {
            s += &format!("{b:02x}");
        }
    }
    s
}

/// One vCPU's run loop. Returns when the run ends or the control thread stops it.
fn vcpu_loop(
    id: u8,
    vcpu: &mut VcpuFd,
    devices: &Devices,
    shared: &Shared,
    events: &mpsc::Sender<Event>,
) {
    let mut answered_round = 0;
    let end = |exit: Exit| {
        let _ = events.send(Event::End(exit));
    };
    if id == 0 {
        *shared
            .first_instruction
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
    }
    let run: *const kvm_bindings::kvm_run = vcpu.get_kvm_run();
    // The access width of the current port I/O exit (kvm-ioctls passes only the bytes).
    let io_size = || {
        // SAFETY: `run` points at this vCPU's kvm_run mapping, alive as long as `vcpu`; it is
        // read right after a KVM_EXIT_IO, when the kernel has filled in the `io` member. The
        // data slice kvm-ioctls hands out lies at `io.data_offset`, a page past the struct, so
        // this read does not overlap it. The pointer was taken from an earlier `&mut kvm_run`
        // that each `vcpu.run()` reborrows; what makes the read sound anyway is that the
        // mapping is shared with the kernel and read volatile, never through a Rust
        // reference that could be assumed unchanged.
        let size = unsafe { std::ptr::addr_of!((*run).__bindgen_anon_1.io.size).read_volatile() };
        usize::from(size)
    };
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        match vcpu.run() {
            Ok(VcpuExit::IoOut(port, data)) => match devices.io_out(port, io_size(), data) {
                IoAction::Continue => {}
                IoAction::DebugExit(v) => return end(Exit::DebugExit(v)),
                IoAction::Reset => {
                    return end(Exit::Reset(
                        "i8042 reset (0xfe written to port 0x64)".into(),
                    ));
                }
            },
            Ok(VcpuExit::IoIn(port, data)) => devices.io_in(port, io_size(), data),
            Ok(VcpuExit::MmioRead(addr, data)) => devices.mmio_read(addr, data),
            Ok(VcpuExit::MmioWrite(addr, data)) => devices.mmio_write(addr, data),
            // Not expected: with the in-kernel LAPIC, KVM handles HLT itself and the halt
            // probe of the control thread decides when the guest is halted for good. Should
            // a host return it anyway, wait a little and run on rather than spin.
            Ok(VcpuExit::Hlt) => std::thread::sleep(Duration::from_millis(1)),
            Ok(VcpuExit::Shutdown) => {
                let regs = cpu::describe(vcpu);
                return end(Exit::Reset(format!(
                    "triple fault on vCPU {id} (KVM_EXIT_SHUTDOWN) at {regs}"
                )));
            }
            Ok(VcpuExit::SystemEvent(kind, data)) => {
                let data = format!("{data:x?}");
                return end(match kind {
                    KVM_SYSTEM_EVENT_SHUTDOWN => Exit::Halted,
                    KVM_SYSTEM_EVENT_RESET => {
                        Exit::Reset(format!("KVM system event reset on vCPU {id}"))
                    }
                    KVM_SYSTEM_EVENT_CRASH => {
                        Exit::Failed(format!("guest crash event on vCPU {id}, data {data}"))
                    }
                    other => Exit::Failed(format!(
                        "KVM system event {other} on vCPU {id}, data {data}"
                    )),
                });
            }
            Ok(VcpuExit::InternalError) => {
                let what = internal_error(vcpu);
                let regs = cpu::describe(vcpu);
                return end(Exit::Failed(format!("vCPU {id}: {what}, at {regs}")));
            }
            Ok(VcpuExit::FailEntry(reason, cpu)) => {
                let regs = cpu::describe(vcpu);
                return end(Exit::Failed(format!(
                    "vCPU {id}: KVM_EXIT_FAIL_ENTRY, hardware entry failure reason {reason:#x} on host CPU {cpu}, at {regs}"
                )));
            }
            Ok(other) => {
                let what = format!("{other:?}");
                let regs = cpu::describe(vcpu);
                return end(Exit::Failed(format!(
                    "vCPU {id}: unhandled exit {what}, at {regs}"
                )));
            }
            Err(e) if e.errno() == libc::EAGAIN => {
                // An AP woken by INIT/SIPI returns EAGAIN once; run it again.
            }
            Err(e) if e.errno() == libc::EINTR => {
                let round = shared.probe_round.load(Ordering::SeqCst);
                if round != answered_round {
                    answered_round = round;
                    let halted = halted_for_good(vcpu);
                    let _ = events.send(Event::Halted { round, halted });
                }
            }
            Err(e) => {
                let regs = cpu::describe(vcpu);
                return end(Exit::Failed(format!(
                    "vCPU {id}: KVM_RUN failed: {e}, at {regs}"
                )));
            }
        }
    }
}

fn since(launch: Instant, t: Option<Instant>) -> Option<u64> {
    t.map(|t| u64::try_from(t.saturating_duration_since(launch).as_micros()).unwrap_or(u64::MAX))
}

/// What is left of a VM after its run: the VM, the KVM handle and guest memory. Dropping it
/// destroys the VM, which takes this host's KVM 5-30 ms with an in-kernel IRQ chip and PIT
/// (measured: `BENCHMARKS.md`); [`Teardown::after_exit`] lets a process report the guest's
/// exit without waiting for that.
#[derive(Debug)]
pub struct Teardown {
    // Held only to be dropped, in field order: the VM before the memory its slots point at.
    _vm: VmFd,
    _kvm: Kvm,
    mem: Arc<GuestMemoryMmap>,
}

impl Teardown {
    /// Destroy the VM in a child process once this process has exited, so the process's exit
    /// status is not held up by KVM's teardown. The child closes its standard streams at
    /// once (nobody waiting on this process's output waits for it), waits for this process
    /// to end (a pipe whose write end only this process holds), then exits, releasing the
    /// last reference to the VM. Guest memory is not inherited (MADV_DONTFORK): it goes with
    /// this process. Falls back to destroying the VM here when the child cannot be made.
    pub fn after_exit(self) {
        for region in self.mem.iter() {
            // SAFETY: the range is a live mapping owned by `self.mem`; MADV_DONTFORK only keeps
            // it out of children and changes no contents.
            unsafe {
                libc::madvise(
                    region.as_ptr().cast(),
                    usize::try_from(region.len()).unwrap_or(0),
                    libc::MADV_DONTFORK,
                );
            }
        }
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: pipe2 writes two descriptors into the two-element array.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return;
        }
        // SAFETY: after fork in this multi-threaded process the child calls only
        // async-signal-safe functions (close, read, _exit) and touches no Rust state.
        match unsafe { libc::fork() } {
            0 => {
                // SAFETY: closing descriptors and blocking in read on our own pipe; _exit
                // ends the child without running any of the parent's atexit or Rust code.
                unsafe {
                    libc::close(0);
                    libc::close(1);
                    libc::close(2);
                    libc::close(fds[1]);
                    let mut b = 0u8;
                    while libc::read(fds[0], (&raw mut b).cast(), 1) != 0 {
                        if *libc::__errno_location() != libc::EINTR {
                            break;
                        }
                    }
                    libc::_exit(0);
                }
            }
            -1 => {
                // SAFETY: closing the two descriptors pipe2 just made.
                unsafe {
                    libc::close(fds[0]);
                    libc::close(fds[1]);
                }
            }
            _ => {
                // The write end stays open until this process exits; the read end is the
                // child's.
                // SAFETY: closing a descriptor pipe2 just made and nothing else uses.
                unsafe { libc::close(fds[0]) };
            }
        }
        // Dropping here closes this process's references; the child holds the last one.
        drop(self);
    }
}

/// Boot `plan` under KVM and wait for the run to end; the VM is destroyed before returning.
pub fn run(plan: &BootPlan, opts: &RunOptions) -> Result<Outcome, KvmError> {
    run_keep(plan, opts).map(|(outcome, teardown)| {
        drop(teardown);
        outcome
    })
}

/// As [`run`], but hand back the finished VM so the caller decides when (and where) it is
/// destroyed.
pub fn run_keep(plan: &BootPlan, opts: &RunOptions) -> Result<(Outcome, Teardown), KvmError> {
    install_kick_handler()?;
    let cpus = u8::try_from(plan.cpus)
        .map_err(|_| KvmError::Setup(format!("{} vCPUs: at most 255", plan.cpus)))?;
    let kvm = Kvm::new().map_err(KvmError::Unavailable)?;
    let vm = kvm
        .create_vm()
        .map_err(|e| KvmError::ioctl("KVM_CREATE_VM", e))?;
    let mem = Arc::new(guest_memory(plan)?);
    let setup = load(plan, &mem)?;
    // Order measured in the spike: memory, TSS and identity map, IRQ chip, PIT, irqfd.
    register_memory(&vm, &mem)?;
    vm.set_tss_address(
        usize::try_from(loader::layout::KVM_TSS_ADDR)
            .map_err(|_| KvmError::Setup("TSS address".into()))?,
    )
    .map_err(|e| KvmError::ioctl("KVM_SET_TSS_ADDR", e))?;
    vm.set_identity_map_address(loader::layout::KVM_IDENTITY_MAP_ADDR)
        .map_err(|e| KvmError::ioctl("KVM_SET_IDENTITY_MAP_ADDR", e))?;
    vm.create_irq_chip()
        .map_err(|e| KvmError::ioctl("KVM_CREATE_IRQCHIP", e))?;
    let pit = kvm_pit_config {
        flags: KVM_PIT_SPEAKER_DUMMY,
        ..Default::default()
    };
    vm.create_pit2(pit)
        .map_err(|e| KvmError::ioctl("KVM_CREATE_PIT2", e))?;
    let irq = EventFd::new(EFD_NONBLOCK).map_err(|source| KvmError::Host {
        what: "eventfd for the serial interrupt",
        source,
    })?;
    vm.register_irqfd(&irq, devices::COM1_GSI)
        .map_err(|e| KvmError::ioctl("KVM_IRQFD", e))?;

    let out = match &opts.serial {
        SerialSink::Stdout => SerialOut::stdout(),
        SerialSink::Buffer(b) => SerialOut::buffer(b.clone()),
        SerialSink::Discard => SerialOut::discard(),
    };
    let devices = Arc::new(Devices::new(IrqLine(Some(irq)), out));

    let mut base_cpuid = cpu::supported_cpuid(&kvm)?;
    cpu::disable(&mut base_cpuid, &opts.cpu_disable);
    let mut vcpus = Vec::with_capacity(usize::from(cpus));
    for id in 0..cpus {
        let vcpu = vm
            .create_vcpu(u64::from(id))
            .map_err(|e| KvmError::ioctl("KVM_CREATE_VCPU", e))?;
        cpu::configure(&vcpu, &cpu::cpuid_for(&base_cpuid, id, cpus))?;
        if id == 0 {
            cpu::set_entry(&vcpu, &setup.entry)?;
        }
        // APs stay in wait-for-SIPI, as every protocol expects: the kernel starts them.
        vcpus.push(vcpu);
    }

    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        probe_round: AtomicU64::new(0),
        first_instruction: std::sync::Mutex::new(None),
    });
    let (tx, rx) = mpsc::channel();
    let console = console::start(opts.console, devices.clone(), tx.clone()).map_err(|source| {
        KvmError::Host {
            what: "console",
            source,
        }
    })?;

    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    for (id, mut vcpu) in (0..cpus).zip(vcpus) {
        let (devices, mine, tx, mem) = (devices.clone(), shared.clone(), tx.clone(), mem.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("vcpu{id}"))
            .spawn(move || {
                // Should this thread end without saying why (a panic), the guard says it, so
                // the control thread never waits for a vCPU that is gone.
                let guard = EndGuard {
                    tx: tx.clone(),
                    id,
                    armed: true,
                };
                vcpu_loop(id, &mut vcpu, &devices, &mine, &tx);
                guard.disarm();
                // The vCPU fd goes before this thread's hold on guest memory.
                drop(vcpu);
                drop(mem);
            });
        match spawned {
            Ok(h) => threads.push(h),
            Err(source) => {
                shared.stop.store(true, Ordering::SeqCst);
                for t in &threads {
                    let _ = t.kill(SIGRTMIN());
                }
                return Err(KvmError::Host {
                    what: "spawning a vCPU thread",
                    source,
                });
            }
        }
    }
    drop(tx);

    let deadline = opts.timeout.and_then(|t| Instant::now().checked_add(t));
    let mut round = 0u64;
    let mut halted_votes = 0usize;
    // The vCPUs answer a probe round one after another, so with several of them one could be
    // woken (an IPI, an NMI) after it answered. Halted for good needs two unanimous rounds in
    // a row then; a single vCPU cannot be woken by anything once halted with IF clear.
    let rounds_needed = if cpus == 1 { 1 } else { 2 };
    let mut unanimous_rounds = 0u32;
    let mut next_probe = Instant::now() + HALT_PROBE_INTERVAL;
    let exit = loop {
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            break Exit::Timeout;
        }
        if now >= next_probe {
            if halted_votes < usize::from(cpus) {
                unanimous_rounds = 0;
            }
            round += 1;
            halted_votes = 0;
            shared.probe_round.store(round, Ordering::SeqCst);
            for t in &threads {
                let _ = t.kill(SIGRTMIN());
            }
            next_probe = now + HALT_PROBE_INTERVAL;
        }
        let wait = deadline
            .map_or(next_probe, |d| d.min(next_probe))
            .saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok(Event::End(exit)) => break exit,
            Ok(Event::Halted { round: r, halted }) => {
                if r == round && halted {
                    halted_votes += 1;
                    if halted_votes == usize::from(cpus) {
                        unanimous_rounds += 1;
                        if unanimous_rounds >= rounds_needed {
                            break Exit::Halted;
                        }
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                break Exit::Failed("every vCPU thread ended without a reason".into());
            }
        }
    };
    let exit_at = Instant::now();

    // Stop every vCPU: set the flag, then kick until each thread has returned. A thread that
    // does not return in time (blocked writing to a stdout nobody reads) is left behind; it
    // holds its own reference to guest memory, so nothing it touches goes away.
    shared.stop.store(true, Ordering::SeqCst);
    let give_up = Instant::now() + STOP_GRACE;
    for t in threads {
        while !t.is_finished() && Instant::now() < give_up {
            let _ = t.kill(SIGRTMIN());
            std::thread::sleep(Duration::from_micros(200));
        }
        if t.is_finished() {
            let _ = t.join();
        }
    }
    drop(console);

    // try_lock: a vCPU thread left blocked on stdout may still hold the UART.
    let (first_serial, serial_bytes) = match devices.uart.try_lock() {
        Ok(u) => (u.writer().first_byte(), u.writer().bytes()),
        Err(_) => (None, 0),
    };
    let first_instruction = *shared
        .first_instruction
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let timings = Timings {
        first_instruction_us: since(opts.launch, first_instruction),
        first_serial_us: since(opts.launch, first_serial),
        exit_us: since(opts.launch, Some(exit_at)).unwrap_or(0),
    };
    let outcome = Outcome {
        exit,
        timings,
        serial_bytes,
        unclaimed_accesses: devices.unclaimed.load(Ordering::Relaxed),
    };
    Ok((
        outcome,
        Teardown {
            _vm: vm,
            _kvm: kvm,
            mem,
        },
    ))
}
