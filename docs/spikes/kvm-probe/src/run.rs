//! The vCPU run loop, the tiny device model (vm-superio COM1, debug-exit port, markers)
//! and vCPU-thread kicking.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, Once};
use std::thread::JoinHandle;
use std::time::Duration;

use kvm_ioctls::{VcpuExit, VcpuFd};
use vm_superio::serial::NoEvents;
use vm_superio::{Serial, Trigger};
use vmm_sys_util::eventfd::EventFd;
use vmm_sys_util::signal::{register_signal_handler, Killable, SIGRTMIN};

use crate::machine::{dump_regs, dump_sregs};
use crate::util::{errno_name, mono_ns};

pub const COM1: u16 = 0x3f8;
pub const DEBUG_EXIT: u16 = 0xf4;
pub const AP_DONE: u16 = 0xf6;
pub const MARKER: u16 = 0x99;

/// Serial IRQ trigger: an EventFd wired to KVM_IRQFD when an irqchip exists, else nothing.
pub enum IrqTrigger {
    Noop,
    Evt(EventFd),
}

impl Trigger for IrqTrigger {
    type E = io::Error;
    fn trigger(&self) -> io::Result<()> {
        match self {
            IrqTrigger::Noop => Ok(()),
            IrqTrigger::Evt(e) => e.write(1),
        }
    }
}

/// Serial output sink: captures every byte and optionally echoes it to stdout.
pub struct Tee {
    pub capture: Arc<Mutex<Vec<u8>>>,
    pub echo: bool,
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.capture.lock().unwrap().extend_from_slice(buf);
        if self.echo {
            io::stdout().write_all(buf)?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        if self.echo {
            io::stdout().flush()?;
        }
        Ok(())
    }
}

pub struct Devices {
    pub serial: Mutex<Serial<IrqTrigger, NoEvents, Tee>>,
    pub capture: Arc<Mutex<Vec<u8>>>,
}

impl Devices {
    pub fn new(trigger: IrqTrigger, echo: bool) -> Arc<Self> {
        let capture = Arc::new(Mutex::new(Vec::new()));
        let serial = Serial::new(trigger, Tee { capture: capture.clone(), echo });
        Arc::new(Self { serial: Mutex::new(serial), capture })
    }
    pub fn output(&self) -> String {
        String::from_utf8_lossy(&self.capture.lock().unwrap()).into_owned()
    }
}

#[derive(Debug, Clone)]
pub enum Stop {
    DebugExit(u8),
    ApDone(u8),
    Hlt,
    Shutdown,
    InternalError { suberror: u32, ndata: u32, data: Vec<u64> },
    FailEntry { reason: u64, cpu: u32 },
    RunErr { errno: i32, msg: String },
    ExitLimit,
    Other(String),
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::DebugExit(v) => write!(f, "IoOut(0xf4) debug-exit value={v:#x}"),
            Stop::ApDone(v) => write!(f, "IoOut(0xf6) AP-done value={:?}", *v as char),
            Stop::Hlt => write!(f, "VcpuExit::Hlt"),
            Stop::Shutdown => write!(f, "VcpuExit::Shutdown (KVM_EXIT_SHUTDOWN)"),
            Stop::InternalError { suberror, ndata, data } => {
                write!(f, "VcpuExit::InternalError suberror={suberror} ndata={ndata} data=[")?;
                for d in data {
                    write!(f, "{d:#x} ")?;
                }
                write!(f, "]")?;
                if *suberror == 1 && !data.is_empty() && data[0] & 1 != 0 && data.len() >= 2 {
                    // KVM_INTERNAL_ERROR_EMULATION with FLAG_INSTRUCTION_BYTES: data[1..]
                    // holds insn_size (1 byte) followed by up to 15 instruction bytes.
                    let bytes: Vec<u8> = data[1..].iter().flat_map(|d| d.to_le_bytes()).collect();
                    let n = (bytes[0] as usize).min(15).min(bytes.len() - 1);
                    write!(f, " insn_bytes=")?;
                    for b in &bytes[1..=n] {
                        write!(f, "{b:02x}")?;
                    }
                }
                Ok(())
            }
            Stop::FailEntry { reason, cpu } => {
                write!(f, "VcpuExit::FailEntry hardware_entry_failure_reason={reason:#x} cpu={cpu}")
            }
            Stop::RunErr { errno, msg } => {
                write!(f, "KVM_RUN returned Err: {msg} [errno {errno} {}]", errno_name(*errno))
            }
            Stop::ExitLimit => write!(f, "exit limit reached"),
            Stop::Other(s) => write!(f, "{s}"),
        }
    }
}

pub struct RunOpts {
    /// Stop (and report) on VcpuExit::Hlt. Without an in-kernel irqchip HLT always exits.
    pub stop_on_hlt: bool,
    pub max_exits: u64,
}

impl Default for RunOpts {
    fn default() -> Self {
        Self { stop_on_hlt: true, max_exits: 50_000_000 }
    }
}

pub struct RunReport {
    pub stop: Stop,
    /// Exit kinds in order, run-length compressed: ("IoOut(0x3f8)", 7).
    pub exits: Vec<(String, u64)>,
    pub counts: BTreeMap<String, u64>,
    pub total_exits: u64,
    pub t_start: u64,
    pub t_first_io: Option<u64>,
    pub t_end: u64,
    /// (marker value, time, exits so far)
    pub markers: Vec<(u8, u64, u64)>,
    pub regs: String,
    pub sregs: String,
}

impl RunReport {
    pub fn exit_summary(&self) -> String {
        let mut s = String::new();
        for (k, n) in self.exits.iter().take(40) {
            if *n == 1 {
                s += &format!("{k} ");
            } else {
                s += &format!("{k}x{n} ");
            }
        }
        if self.exits.len() > 40 {
            s += &format!("... ({} runs total)", self.exits.len());
        }
        s
    }
}

fn note(rep: &mut RunReport, kind: String) {
    rep.total_exits += 1;
    *rep.counts.entry(kind.clone()).or_default() += 1;
    match rep.exits.last_mut() {
        Some((k, n)) if *k == kind => *n += 1,
        _ => rep.exits.push((kind, 1)),
    }
}

/// Runs `vcpu` until a stop condition; never panics on guest behaviour.
pub fn run_vcpu(vcpu: &mut VcpuFd, dev: &Devices, opts: &RunOpts) -> RunReport {
    let mut rep = RunReport {
        stop: Stop::ExitLimit,
        exits: Vec::new(),
        counts: BTreeMap::new(),
        total_exits: 0,
        t_start: mono_ns(),
        t_first_io: None,
        t_end: 0,
        markers: Vec::new(),
        regs: String::new(),
        sregs: String::new(),
    };
    let mut internal_error = false;
    while rep.total_exits < opts.max_exits {
        let (kind, stop) = match vcpu.run() {
            Ok(exit) => match exit {
                VcpuExit::IoOut(port, data) => {
                    if rep.t_first_io.is_none() {
                        rep.t_first_io = Some(mono_ns());
                    }
                    let v = data.first().copied().unwrap_or(0);
                    let stop = match port {
                        DEBUG_EXIT => Some(Stop::DebugExit(v)),
                        AP_DONE => Some(Stop::ApDone(v)),
                        MARKER => {
                            rep.markers.push((v, mono_ns(), rep.total_exits));
                            None
                        }
                        COM1..=0x3ff => {
                            if let Err(e) = dev.serial.lock().unwrap().write((port - COM1) as u8, v) {
                                eprintln!("serial write error: {e:?}");
                            }
                            None
                        }
                        _ => None,
                    };
                    (format!("IoOut({port:#x})"), stop)
                }
                VcpuExit::IoIn(port, data) => {
                    if (COM1..=0x3ff).contains(&port) {
                        data[0] = dev.serial.lock().unwrap().read((port - COM1) as u8);
                    } else {
                        data.fill(0xff);
                    }
                    (format!("IoIn({port:#x})"), None)
                }
                VcpuExit::MmioRead(addr, data) => {
                    data.fill(0xff);
                    (format!("MmioRead({addr:#x})"), None)
                }
                VcpuExit::MmioWrite(addr, _) => (format!("MmioWrite({addr:#x})"), None),
                VcpuExit::Hlt => ("Hlt".into(), opts.stop_on_hlt.then_some(Stop::Hlt)),
                VcpuExit::Shutdown => ("Shutdown".into(), Some(Stop::Shutdown)),
                VcpuExit::InternalError => {
                    internal_error = true;
                    ("InternalError".into(), Some(Stop::Other(String::new())))
                }
                VcpuExit::FailEntry(reason, cpu) => {
                    ("FailEntry".into(), Some(Stop::FailEntry { reason, cpu }))
                }
                other => {
                    let s = format!("{other:?}");
                    (s.clone(), Some(Stop::Other(format!("unhandled exit {s}"))))
                }
            },
            // EAGAIN: an AP parked in KVM_MP_STATE_UNINITIALIZED was woken (INIT/SIPI
            // processed in-kernel); KVM wants KVM_RUN to be simply called again.
            Err(e) if e.errno() == libc::EAGAIN => ("Err(EAGAIN)->retry".into(), None),
            Err(e) => (
                format!("Err({})", errno_name(e.errno())),
                Some(Stop::RunErr { errno: e.errno(), msg: e.to_string() }),
            ),
        };
        note(&mut rep, kind);
        if let Some(mut stop) = stop {
            if internal_error {
                let run = vcpu.get_kvm_run();
                // SAFETY: exit_reason was KVM_EXIT_INTERNAL_ERROR, so the kernel filled the
                // `internal` member of the exit union.
                let ie = unsafe { run.__bindgen_anon_1.internal };
                let n = (ie.ndata as usize).min(ie.data.len());
                stop = Stop::InternalError {
                    suberror: ie.suberror,
                    ndata: ie.ndata,
                    data: ie.data[..n].to_vec(),
                };
            }
            rep.stop = stop;
            break;
        }
    }
    rep.t_end = mono_ns();
    rep.regs = dump_regs(vcpu);
    rep.sregs = dump_sregs(vcpu);
    rep
}

extern "C" fn kick_handler(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {}

/// Installs a no-op SIGRTMIN handler (process-wide, once). Delivering SIGRTMIN to a
/// thread blocked in KVM_RUN makes the ioctl return EINTR.
pub fn install_kick_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        register_signal_handler(SIGRTMIN(), kick_handler).expect("register SIGRTMIN handler");
    });
}

pub struct VcpuThread {
    pub handle: JoinHandle<()>,
    pub rx: mpsc::Receiver<(VcpuFd, RunReport)>,
}

pub fn spawn_vcpu(mut vcpu: VcpuFd, dev: Arc<Devices>, opts: RunOpts) -> VcpuThread {
    install_kick_handler();
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        let rep = run_vcpu(&mut vcpu, &dev, &opts);
        let _ = tx.send((vcpu, rep));
    });
    VcpuThread { handle, rx }
}

impl VcpuThread {
    /// Waits up to `timeout`; on timeout kicks the thread with SIGRTMIN (pthread_kill via
    /// vmm-sys-util `Killable`) and waits again. Returns (report, was_kicked).
    pub fn join_with_watchdog(self, timeout: Duration) -> (VcpuFd, RunReport, bool) {
        match self.rx.recv_timeout(timeout) {
            Ok((v, r)) => {
                let _ = self.handle.join();
                (v, r, false)
            }
            Err(_) => {
                let _ = self.handle.kill(SIGRTMIN());
                let (v, r) = self
                    .rx
                    .recv_timeout(Duration::from_secs(5))
                    .expect("vCPU thread did not return after SIGRTMIN kick");
                let _ = self.handle.join();
                (v, r, true)
            }
        }
    }
}

pub fn print_report(label: &str, rep: &RunReport, dev: &Devices, kicked: bool) {
    println!("--- [{label}] stop: {}", rep.stop);
    if kicked {
        println!("    (watchdog had to kick the vCPU thread with SIGRTMIN)");
    }
    println!("    exits ({} total): {}", rep.total_exits, rep.exit_summary());
    let out = dev.output();
    println!("    serial output via vm-superio ({} bytes): {:?}", out.len(), out);
    if let Some(t) = rep.t_first_io {
        println!(
            "    run start -> first IoOut: {:.1} us; run start -> stop: {:.1} us",
            (t - rep.t_start) as f64 / 1e3,
            (rep.t_end - rep.t_start) as f64 / 1e3
        );
    }
    println!("    final regs:\n  {}\n{}", rep.regs, rep.sregs);
}
