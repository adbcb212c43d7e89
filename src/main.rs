//! `anyboot`: inspect a kernel image and boot it anywhere.
//!
//! Exit statuses (stable): 0 success; 2 bad image or bad options (one line on stderr naming
//! the file and the rule broken); 1 any other failure (e.g. stdout closed).

mod render;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// Exit status for a bad image or bad options.
const EXIT_BAD_INPUT: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "anyboot",
    version,
    about = "Inspect a kernel image and boot it anywhere: PVH, the Linux boot protocol, multiboot",
    long_about = "anyboot reads a kernel image (ELF notes, bzImage setup header and its compressed \
payload, multiboot header) and tells every way it can be booted.",
    after_help = "Examples:\n  anyboot inspect /boot/vmlinuz-$(uname -r)\n  anyboot inspect --json vmlinux | jq .pvh_entry\n\nExit status: 0 success, 2 bad image or options, 1 other failure."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Report a kernel image's format, entry points, Xen notes, bzImage and multiboot facts.
    #[command(
        after_help = "Examples:\n  anyboot inspect /boot/vmlinuz-6.1.0-28-cloud-amd64\n  anyboot inspect --json netbsd-MICROVM | jq '.xen_notes[] | select(.name == \"PHYS32_ENTRY\")'\n\nFor a bzImage the payload is decompressed as a stream only as far as the inner vmlinux's\nnotes, so this also tells whether a bzImage is PVH-capable.\n\nThe --json document is described in docs/inspect-json.md."
    )]
    Inspect {
        /// The kernel image: ELF (vmlinux, BSD kernel, unikernel), bzImage, or multiboot binary.
        kernel: PathBuf,
        /// Print a JSON document instead of the text report.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::BadInput(msg)) => {
            eprintln!("anyboot: {msg}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
        Err(Failure::Other(e)) => {
            // Quietly end on a closed pipe (`anyboot inspect ... | head`).
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::from(1);
            }
            eprintln!("anyboot: {e:#}");
            ExitCode::from(1)
        }
    }
}

enum Failure {
    /// A bad image or option: exit 2 with this one-line message.
    BadInput(String),
    Other(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Other(e)
    }
}

/// "FILE: what is wrong: why", on one line.
fn one_line(file: &std::path::Path, err: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = format!("{}: {err}", file.display());
    let mut src = err.source();
    while let Some(s) = src {
        let text = s.to_string();
        if !msg.ends_with(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        src = s.source();
    }
    msg.replace('\n', " ")
}

fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Inspect { kernel, json } => {
            let report = loader::inspect::inspect_path(&kernel)
                .map_err(|e| Failure::BadInput(one_line(&kernel, &e)))?;
            let mut out = std::io::stdout().lock();
            if json {
                let doc = render::JsonDoc {
                    file: &kernel.display().to_string(),
                    report: &report,
                };
                serde_json::to_writer_pretty(&mut out, &doc).context("writing JSON")?;
                writeln!(out).context("writing JSON")?;
            } else {
                out.write_all(render::text(&kernel, &report).as_bytes())
                    .context("writing the report")?;
            }
            out.flush().context("writing the report")?;
        }
    }
    Ok(())
}
