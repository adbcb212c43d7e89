//! The guest's console input: the host terminal in raw mode when stdin is a tty (Ctrl-A x
//! quits, Ctrl-A Ctrl-A sends a Ctrl-A, as in QEMU), the bytes of a pipe or file as they come
//! otherwise.

use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::Duration;

use super::devices::Devices;
use super::{Event, Exit};

/// What feeds the guest's serial input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleMode {
    /// stdin: raw mode with the Ctrl-A escape when it is a terminal, plain bytes otherwise.
    Stdin,
    /// Nothing.
    None,
}

const CTRL_A: u8 = 0x01;

/// Restores the terminal when dropped.
#[derive(Debug)]
pub struct ConsoleGuard {
    saved: Option<libc::termios>,
}

impl Drop for ConsoleGuard {
    fn drop(&mut self) {
        if let Some(t) = self.saved.take() {
            // SAFETY: tcsetattr on fd 0 with a termios value tcgetattr filled in earlier.
            unsafe {
                libc::tcsetattr(io::stdin().as_raw_fd(), libc::TCSANOW, &t);
            }
        }
    }
}

fn raw_mode() -> io::Result<Option<libc::termios>> {
    let fd = io::stdin().as_raw_fd();
    // SAFETY: isatty only inspects the descriptor.
    if unsafe { libc::isatty(fd) } != 1 {
        return Ok(None);
    }
    // SAFETY: termios is plain data; tcgetattr fills it in and we check its result.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: fd is a terminal and `saved` is a valid termios to write to.
    if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut raw = saved;
    // SAFETY: cfmakeraw only edits the termios value it is given.
    unsafe { libc::cfmakeraw(&mut raw) };
    // Keep output post-processing so the host terminal still turns LF into CRLF.
    raw.c_oflag = saved.c_oflag;
    // SAFETY: fd is a terminal and `raw` a valid termios.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &raw) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Some(saved))
}

fn feed(devices: &Devices, mut bytes: &[u8]) {
    // The UART's receive FIFO holds 64 bytes: wait for the guest to drain it. Bounded, so a
    // guest that never reads cannot pin this thread (the excess is dropped, as a real UART
    // overruns).
    for _ in 0..1000 {
        if bytes.is_empty() {
            return;
        }
        let n = devices.console_input(bytes);
        bytes = &bytes[n..];
        if n == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Start feeding console input to `devices`; Ctrl-A x sends the end of the run on `events`.
pub(super) fn start(
    mode: ConsoleMode,
    devices: Arc<Devices>,
    events: Sender<Event>,
) -> io::Result<ConsoleGuard> {
    if mode == ConsoleMode::None {
        return Ok(ConsoleGuard { saved: None });
    }
    let saved = raw_mode()?;
    let tty = saved.is_some();
    // Detached: a read from stdin cannot be interrupted portably, and the thread holds
    // nothing but the devices; it ends at EOF or with the process.
    std::thread::Builder::new()
        .name("console".into())
        .spawn(move || {
            let mut stdin = io::stdin().lock();
            let mut buf = [0u8; 256];
            let mut escape = false;
            loop {
                let n = match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if !tty {
                    feed(&devices, &buf[..n]);
                    continue;
                }
                let mut out = Vec::with_capacity(n);
                for &b in &buf[..n] {
                    if escape {
                        escape = false;
                        match b {
                            b'x' | b'X' => {
                                let _ = events.send(Event::End(Exit::Quit));
                                return;
                            }
                            CTRL_A => out.push(CTRL_A),
                            _ => {}
                        }
                    } else if b == CTRL_A {
                        escape = true;
                    } else {
                        out.push(b);
                    }
                }
                feed(&devices, &out);
            }
        })?;
    Ok(ConsoleGuard { saved })
}
