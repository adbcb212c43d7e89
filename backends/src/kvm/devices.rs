//! The port-I/O devices of the KVM backend: a 16550 UART at 0x3f8 (vm-superio), the i8042's
//! reset line (vm-superio), and the isa-debug-exit port at 0xf4. Everything else on the I/O
//! bus and all MMIO outside RAM is unclaimed: reads return all ones, writes are dropped, and
//! each is counted (and logged at debug level) — never an error, whatever the guest does.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use vm_superio::serial::NoEvents;
use vm_superio::{I8042Device, Serial, Trigger};
use vmm_sys_util::eventfd::EventFd;

/// COM1's base port.
pub const COM1: u16 = 0x3f8;
/// COM1's interrupt line (ISA IRQ 4, GSI 4).
pub const COM1_GSI: u32 = 4;
/// The i8042's data port; its command port is 0x64.
pub const I8042_BASE: u16 = 0x60;
/// QEMU's isa-debug-exit convention: a write of v ends the VM with status (v << 1) | 1.
pub const DEBUG_EXIT_PORT: u16 = 0xf4;
/// Ports the debug-exit device covers (QEMU's `iosize=0x04`).
pub const DEBUG_EXIT_SIZE: u16 = 4;

/// Raises the UART's interrupt through an irqfd; a no-op without one.
#[derive(Debug)]
pub struct IrqLine(pub Option<EventFd>);

impl Trigger for IrqLine {
    type E = io::Error;
    fn trigger(&self) -> io::Result<()> {
        match &self.0 {
            Some(e) => e.write(1),
            None => Ok(()),
        }
    }
}

/// The i8042 reset line: a flag the vCPU checks after each i8042 write.
#[derive(Debug, Default, Clone)]
pub struct ResetLine(Arc<AtomicBool>);

impl Trigger for ResetLine {
    type E = io::Error;
    fn trigger(&self) -> io::Result<()> {
        self.0.store(true, Ordering::SeqCst);
        Ok(())
    }
}

/// Where serial output goes: the host's stdout or a capture buffer, with the time of the first
/// byte for `--time`.
#[derive(Debug)]
pub struct SerialOut {
    sink: Sink,
    first_byte: Option<Instant>,
    bytes: u64,
    broken: bool,
}

#[derive(Debug)]
enum Sink {
    Stdout,
    Buffer(Arc<Mutex<Vec<u8>>>),
    Discard,
}

impl SerialOut {
    /// Write to the process's stdout.
    pub fn stdout() -> SerialOut {
        SerialOut::with(Sink::Stdout)
    }
    /// Collect into `buf`.
    pub fn buffer(buf: Arc<Mutex<Vec<u8>>>) -> SerialOut {
        SerialOut::with(Sink::Buffer(buf))
    }
    /// Drop everything.
    pub fn discard() -> SerialOut {
        SerialOut::with(Sink::Discard)
    }
    fn with(sink: Sink) -> SerialOut {
        SerialOut {
            sink,
            first_byte: None,
            bytes: 0,
            broken: false,
        }
    }
    /// When the guest wrote its first byte.
    pub fn first_byte(&self) -> Option<Instant> {
        self.first_byte
    }
    /// Bytes the guest wrote.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Write for SerialOut {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.first_byte.is_none() {
            self.first_byte = Some(Instant::now());
        }
        self.bytes += buf.len() as u64;
        if self.broken {
            return Ok(buf.len());
        }
        let r = match &self.sink {
            // Unbuffered: the guest's console must show up as it is written. One write(2) per
            // byte is cheap next to the VM exit that produced the byte.
            Sink::Stdout => io::stdout().lock().write_all(buf),
            Sink::Buffer(b) => {
                b.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend_from_slice(buf);
                Ok(())
            }
            Sink::Discard => Ok(()),
        };
        if let Err(e) = r {
            // A closed stdout (EPIPE) must not stop the guest: later output is dropped. Other
            // errors lose this write only.
            if e.kind() == io::ErrorKind::BrokenPipe {
                self.broken = true;
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        if let Sink::Stdout = self.sink {
            let _ = io::stdout().flush();
        }
        Ok(())
    }
}

/// The 16550 UART.
pub type Uart = Serial<IrqLine, NoEvents, SerialOut>;

/// The register offset of `port` in a device at `base` (the callers' match arms bound it).
fn reg(port: u16, base: u16) -> u8 {
    u8::try_from(port.wrapping_sub(base)).unwrap_or(u8::MAX)
}

/// What an I/O access asked the VMM to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoAction {
    /// Nothing: carry on.
    Continue,
    /// The guest wrote `value` to the debug-exit port.
    DebugExit(u32),
    /// The guest pulsed the i8042 reset line.
    Reset,
}

/// The I/O bus.
#[derive(Debug)]
pub struct Devices {
    /// COM1.
    pub uart: Mutex<Uart>,
    i8042: Mutex<I8042Device<ResetLine>>,
    reset: ResetLine,
    /// Unclaimed port and MMIO accesses.
    pub unclaimed: AtomicU64,
}

impl Devices {
    /// The devices, with the UART's interrupt on `irq` and its output to `out`.
    pub fn new(irq: IrqLine, out: SerialOut) -> Devices {
        let reset = ResetLine::default();
        Devices {
            uart: Mutex::new(Serial::new(irq, out)),
            i8042: Mutex::new(I8042Device::new(reset.clone())),
            reset,
            unclaimed: AtomicU64::new(0),
        }
    }

    fn uart(&self) -> std::sync::MutexGuard<'_, Uart> {
        self.uart.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A port write of `data`: `data.len() / size` accesses of `size` bytes (a string
    /// instruction is several), each as wide as the instruction. The 8-bit devices see a wide
    /// access as byte accesses to consecutive ports, as on a PC's ISA bus.
    pub fn io_out(&self, port: u16, size: usize, data: &[u8]) -> IoAction {
        let size = size.clamp(1, 4);
        if (DEBUG_EXIT_PORT..DEBUG_EXIT_PORT + DEBUG_EXIT_SIZE).contains(&port) {
            let mut v = [0u8; 4];
            let n = data.len().min(size);
            v[..n].copy_from_slice(&data[..n]);
            return IoAction::DebugExit(u32::from_le_bytes(v));
        }
        for chunk in data.chunks(size) {
            for (j, &v) in chunk.iter().enumerate() {
                let p = port.wrapping_add(u16::try_from(j).unwrap_or(0));
                if let IoAction::Reset = self.out_byte(p, v) {
                    return IoAction::Reset;
                }
            }
        }
        IoAction::Continue
    }

    fn out_byte(&self, port: u16, v: u8) -> IoAction {
        match port {
            COM1..=0x3ff => {
                // The only error is the interrupt eventfd's write, which cannot fail for a
                // counter far from overflow; the byte is delivered either way.
                let _ = self.uart().write(reg(port, COM1), v);
                IoAction::Continue
            }
            0x60 | 0x64 => {
                let _ = self
                    .i8042
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .write(reg(port, I8042_BASE), v);
                if self.reset.0.swap(false, Ordering::SeqCst) {
                    IoAction::Reset
                } else {
                    IoAction::Continue
                }
            }
            _ => {
                self.unclaimed.fetch_add(1, Ordering::Relaxed);
                log_unclaimed("port write", u64::from(port), 1);
                IoAction::Continue
            }
        }
    }

    /// A port read into `data`: `data.len() / size` accesses of `size` bytes, each register
    /// read once per access (a `rep insb` of the UART's status register reads it every time).
    pub fn io_in(&self, port: u16, size: usize, data: &mut [u8]) {
        let size = size.clamp(1, 4);
        for chunk in data.chunks_mut(size) {
            for (j, b) in chunk.iter_mut().enumerate() {
                *b = self.in_byte(port.wrapping_add(u16::try_from(j).unwrap_or(0)));
            }
        }
    }

    fn in_byte(&self, port: u16) -> u8 {
        match port {
            COM1..=0x3ff => self.uart().read(reg(port, COM1)),
            0x60 | 0x64 => self
                .i8042
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .read(reg(port, I8042_BASE)),
            _ => {
                self.unclaimed.fetch_add(1, Ordering::Relaxed);
                log_unclaimed("port read", u64::from(port), 1);
                0xff
            }
        }
    }

    /// An MMIO read outside RAM.
    pub fn mmio_read(&self, addr: u64, data: &mut [u8]) {
        self.unclaimed.fetch_add(1, Ordering::Relaxed);
        log_unclaimed("MMIO read", addr, data.len());
        data.fill(0xff);
    }

    /// An MMIO write outside RAM.
    pub fn mmio_write(&self, addr: u64, data: &[u8]) {
        self.unclaimed.fetch_add(1, Ordering::Relaxed);
        log_unclaimed("MMIO write", addr, data.len());
    }

    /// Bytes typed at the console, for the UART's receive FIFO; returns how many it took.
    pub fn console_input(&self, bytes: &[u8]) -> usize {
        self.uart().enqueue_raw_bytes(bytes).unwrap_or(0)
    }
}

static DEBUG: AtomicBool = AtomicBool::new(false);
static LOGGED: AtomicU64 = AtomicU64::new(0);

/// Turn debug logging of unclaimed accesses on (`ANYBOOT_LOG=debug`).
pub fn set_debug(on: bool) {
    DEBUG.store(on, Ordering::Relaxed);
}

fn log_unclaimed(what: &str, addr: u64, len: usize) {
    // Bounded: a guest storming unclaimed ports must not flood the host's stderr.
    if DEBUG.load(Ordering::Relaxed) && LOGGED.fetch_add(1, Ordering::Relaxed) < 1000 {
        eprintln!("anyboot: debug: unclaimed {what} at {addr:#x} ({len} bytes)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn devices() -> (Devices, Arc<Mutex<Vec<u8>>>) {
        let buf = Arc::new(Mutex::new(Vec::new()));
        (
            Devices::new(IrqLine(None), SerialOut::buffer(buf.clone())),
            buf,
        )
    }

    #[test]
    fn uart_transmits_and_unclaimed_reads_are_ones() {
        let (d, buf) = devices();
        for b in b"hi" {
            assert_eq!(d.io_out(COM1, 1, &[*b]), IoAction::Continue);
        }
        assert_eq!(&*buf.lock().unwrap(), b"hi");
        let mut data = [0u8; 4];
        d.io_in(0x510, 4, &mut data);
        assert_eq!(data, [0xff; 4]);
        d.mmio_read(0xd000_0000, &mut data);
        assert_eq!(data, [0xff; 4]);
        // Four unclaimed byte reads (one 32-bit port access) and one MMIO read.
        assert_eq!(d.unclaimed.load(Ordering::Relaxed), 5);
        // LSR: transmitter empty (bits 5 and 6) after a write.
        let mut lsr = [0u8];
        d.io_in(COM1 + 5, 1, &mut lsr);
        assert_eq!(lsr[0] & 0x60, 0x60);
    }

    #[test]
    fn string_reads_read_the_register_each_time() {
        let (d, _) = devices();
        // rep insb of LSR: every element is a fresh read of the same register.
        let mut lsr = [0u8; 16];
        d.io_in(COM1 + 5, 1, &mut lsr);
        assert!(lsr.iter().all(|&b| b & 0x60 == 0x60), "{lsr:x?}");
        // A 16-bit read of 0x3fd covers LSR and MSR, as on an ISA bus.
        let mut w = [0u8; 2];
        d.io_in(COM1 + 5, 2, &mut w);
        assert_eq!(w[0] & 0x60, 0x60);
    }

    #[test]
    fn debug_exit_and_reset() {
        let (d, _) = devices();
        assert_eq!(d.io_out(0xf4, 1, &[0x10]), IoAction::DebugExit(0x10));
        assert_eq!(
            d.io_out(0xf4, 4, &0x1234u32.to_le_bytes()),
            IoAction::DebugExit(0x1234)
        );
        assert_eq!(d.io_out(0x64, 1, &[0xfd]), IoAction::Continue);
        assert_eq!(d.io_out(0x64, 1, &[0xfe]), IoAction::Reset);
        assert_eq!(d.io_out(0x64, 1, &[0xfd]), IoAction::Continue);
    }
}
