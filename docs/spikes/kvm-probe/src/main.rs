//! kvm-probe: de-risking spike for anyboot's KVM backend. See FINDINGS.md.
//!
//! Usage: cargo run -- <probe> [--full] [--quiet] [--timing]
//!   --full    do the complete Q4 VM/vCPU set-up (irqchip, PIT, irqfd, CPUID, MSRs, FPU, LAPIC)
//!   --quiet   no serial echo / dumps (used by `bench`)
//!   --timing  print a TIMING line on stderr

mod machine;
mod probes;
mod run;
mod setup;
mod util;

use machine::Mode;
use probes::Ctx;

type ProbeFn = fn(&Ctx, &[String]) -> util::Res<()>;

pub const PROBES: &[(&str, ProbeFn)] = &[
    ("pvh-sregs", |c, _| probes::pvh(c, Mode::Pm32SregsOnly, false)),
    ("pvh-sregs-reload", |c, _| probes::pvh(c, Mode::Pm32SregsOnly, true)),
    ("pvh-gdt", |c, _| probes::pvh(c, Mode::Pm32Gdt, true)),
    ("linux64", |c, _| probes::linux64(c)),
    ("multiboot", |c, _| probes::multiboot(c)),
    ("setup", |c, _| probes::setup(c)),
    ("smp-direct", |c, _| probes::smp(c, false)),
    ("smp-sipi", |c, _| probes::smp(c, true)),
    ("triple-int3", |c, _| probes::fault(c, "triple-int3")),
    ("triple-ud2", |c, _| probes::fault(c, "triple-ud2")),
    ("int3-noidt", |c, _| probes::fault(c, "int3-noidt")),
    ("int3-idt", |c, _| probes::fault(c, "int3-idt")),
    ("intn3-idt", |c, _| probes::fault(c, "intn3-idt")),
    ("ud2-idt", |c, _| probes::fault(c, "ud2-idt")),
    ("int80-idt", |c, _| probes::fault(c, "int80-idt")),
    ("loop-signal", |c, _| probes::loop_signal(c)),
    ("loop-immediate-exit", |c, _| probes::loop_immediate_exit(c)),
    ("storm", |c, _| probes::storm(c)),
    ("serial-irq", |c, _| probes::serial_irq(c)),
    ("insn-cmpxchg16b", |c, _| probes::insn(c, 1)),
    ("insn-xsave", |c, _| probes::insn(c, 2)),
    ("insn-int3-64", |c, _| probes::insn(c, 3)),
    ("insn-fxsave", |c, _| probes::insn(c, 4)),
    ("insn-sse", |c, _| probes::insn(c, 5)),
    ("insn-cpuid", |c, _| probes::insn(c, 6)),
    ("insn-compute64", |c, _| probes::insn(c, 7)),
    ("insn-ud2-iretq", |c, _| probes::insn(c, 8)),
    ("order", |c, _| probes::order(c)),
    ("bench", |_, a| probes::bench(a)),
    ("all", |_, _| probes::all()),
];

fn main() {
    let t_main = util::mono_ns();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(name) = args.first() else {
        eprintln!("usage: kvm-probe <probe> [--full] [--quiet] [--timing]\nprobes:");
        for (n, _) in PROBES {
            eprintln!("  {n}");
        }
        std::process::exit(2);
    };
    let rest = &args[1..];
    let flag = |f: &str| rest.iter().any(|a| a == f);
    let ctx = Ctx { full: flag("--full"), quiet: flag("--quiet"), timing: flag("--timing"), t_main };
    let Some((_, f)) = PROBES.iter().find(|(n, _)| n == name) else {
        eprintln!("unknown probe {name}");
        std::process::exit(2);
    };
    if !ctx.quiet {
        println!("== probe {name} (full set-up: {})", ctx.full);
    }
    if let Err(e) = f(&ctx, rest) {
        eprintln!("probe {name} FAILED: {e}");
        std::process::exit(1);
    }
    if !ctx.quiet {
        println!("VmHWM at exit: {} kB", util::proc_status_kb("VmHWM").unwrap_or(0));
    }
}
