//! The probes. Each builds a VM, runs a guest from guests/ and prints what happened.

use std::process::Command;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use kvm_bindings::{kvm_mp_state, kvm_regs, kvm_run, KVM_MP_STATE_RUNNABLE};
use kvm_ioctls::VcpuFd;
use vmm_sys_util::signal::{Killable, SIGRTMIN};

use crate::machine::*;
use crate::run::*;
use crate::setup::{report_caps, vcpu_setup, vm_setup, StepLog};
use crate::util::{kerr, median, mono_ns, proc_status_kb, Res};

macro_rules! guest {
    ($name:literal) => {
        include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".bin"))
    };
}

pub struct Ctx {
    /// Do the full Q4 set-up (TSS, identity map, irqchip, PIT, irqfd, CPUID, MSRs, FPU, LAPIC).
    pub full: bool,
    pub quiet: bool,
    /// Print a machine-readable TIMING line on stderr (used by `bench`).
    pub timing: bool,
    pub t_main: u64,
}

pub struct Built {
    pub m: Machine,
    pub vcpu: VcpuFd,
    pub dev: Arc<Devices>,
}

/// Common path: VM, optional full set-up, load image at 1 MiB, mode + entry registers.
pub fn build(
    ctx: &Ctx,
    image: &[u8],
    mode: Mode,
    prep: impl FnOnce(&Machine) -> Res<()>,
    regs: impl FnOnce(&mut kvm_regs),
) -> Res<Built> {
    let m = Machine::new(MEM_SIZE)?;
    let mut log = StepLog::new(ctx.full && !ctx.quiet);
    let evt = if ctx.full {
        vm_setup(&m, &mut log)
    } else {
        m.register_memory()?;
        None
    };
    m.write(LOAD_ADDR, image)?;
    prep(&m)?;
    let vcpu = m.vm.create_vcpu(0).map_err(|e| format!("create_vcpu(0): {}", kerr(&e)))?;
    if ctx.full {
        vcpu_setup(&m, &vcpu, 0, &mut log);
    }
    setup_mode(&m, &vcpu, mode)?;
    set_entry_regs(&vcpu, LOAD_ADDR, regs)?;
    if !ctx.quiet {
        println!("  entry state (KVM_GET_SREGS after set):\n{}", dump_sregs(&vcpu));
        println!("  entry regs:\n  {}", dump_regs(&vcpu));
    }
    let trigger = match evt {
        Some(e) => IrqTrigger::Evt(e),
        None => IrqTrigger::Noop,
    };
    let dev = Devices::new(trigger, !ctx.quiet);
    Ok(Built { m, vcpu, dev })
}

/// Build, run on a vCPU thread with a watchdog, print the report (+ TIMING line).
fn run_simple(ctx: &Ctx, label: &str, b: Built, timeout: Duration) -> RunReport {
    let Built { m, vcpu, dev } = b;
    let th = spawn_vcpu(vcpu, dev.clone(), RunOpts::default());
    let (mut vcpu, rep, kicked) = th.join_with_watchdog(timeout);
    if !ctx.quiet {
        print_report(label, &rep, &dev, kicked);
        if let Stop::DebugExit(_) = rep.stop {
            // The guest does `hlt` right after the debug-exit write: show what that produces.
            let th = spawn_vcpu(vcpu, dev.clone(), RunOpts { max_exits: 1, ..Default::default() });
            let (v, next, kicked) = th.join_with_watchdog(Duration::from_millis(300));
            vcpu = v;
            println!(
                "    next KVM_RUN after debug-exit: {}{}",
                next.stop,
                if kicked { " (vCPU blocked in-kernel on HLT; watchdog SIGRTMIN kick after 300 ms)" } else { "" }
            );
        }
    }
    if ctx.timing {
        let t_vm = m.t_vm_created;
        let t = mono_ns();
        drop(vcpu);
        drop(m);
        let teardown = mono_ns() - t;
        timing_line(ctx, t_vm, teardown, &rep);
    }
    rep
}

fn timing_line(ctx: &Ctx, t_vm_created: u64, teardown_ns: u64, rep: &RunReport) {
    let t0: u64 = std::env::var("KVM_PROBE_T0_NS").ok().and_then(|v| v.parse().ok()).unwrap_or(ctx.t_main);
    let us = |a: u64, b: u64| (b as f64 - a as f64) / 1e3;
    let first = rep.t_first_io.unwrap_or(rep.t_end);
    eprintln!(
        "TIMING spawn_to_main_us={:.1} spawn_to_vm_us={:.1} vm_to_first_io_us={:.1} spawn_to_first_io_us={:.1} spawn_to_stop_us={:.1} first_io_to_stop_us={:.1} vm_teardown_us={:.1} vmhwm_kb={} stop_ok={}",
        us(t0, ctx.t_main),
        us(t0, t_vm_created),
        us(t_vm_created, first),
        us(t0, first),
        us(t0, rep.t_end),
        us(first, rep.t_end),
        teardown_ns as f64 / 1e3,
        proc_status_kb("VmHWM").unwrap_or(0),
        matches!(rep.stop, Stop::DebugExit(0x10))
    );
}

// ---------------------------------------------------------------- Q1-Q3 boot protocols

/// `reload`: use the guest that far-jumps/reloads segments from the GDT.
pub fn pvh(ctx: &Ctx, mode: Mode, reload: bool) -> Res<()> {
    let image: &[u8] = if reload { guest!("pvh_gdt") } else { guest!("pvh") };
    let b = build(
        ctx,
        image,
        mode,
        |m| {
            m.write_u32(PVH_INFO, 0x336e_c578)?; // hvm_start_info.magic
            m.write_u32(PVH_INFO + 4, 1) // version
        },
        |r| r.rbx = PVH_INFO,
    )?;
    run_simple(ctx, &format!("pvh {mode:?} reload={reload}"), b, Duration::from_secs(5));
    Ok(())
}

pub fn linux64(ctx: &Ctx) -> Res<()> {
    let b = build(
        ctx,
        guest!("linux64"),
        Mode::Long64,
        |m| m.write(BOOT_PARAMS + 0x202, b"HdrS"),
        |r| r.rsi = BOOT_PARAMS,
    )?;
    run_simple(ctx, "linux64", b, Duration::from_secs(5));
    Ok(())
}

pub fn multiboot(ctx: &Ctx) -> Res<()> {
    let b = build(
        ctx,
        guest!("multiboot"),
        Mode::Pm32Gdt,
        |m| {
            m.write_u32(MB_INFO, 1)?; // flags: mem_lower/mem_upper valid
            m.write_u32(MB_INFO + 4, 639)?;
            m.write_u32(MB_INFO + 8, ((MEM_SIZE as u32) >> 10) - 1024)
        },
        |r| {
            r.rax = 0x2BAD_B002;
            r.rbx = MB_INFO;
        },
    )?;
    run_simple(ctx, "multiboot", b, Duration::from_secs(5));
    Ok(())
}

// ---------------------------------------------------------------- Q4 set-up and SMP

pub fn setup(ctx: &Ctx) -> Res<()> {
    let m = Machine::new(MEM_SIZE)?;
    let mut log = StepLog::new(true);
    println!("VM-level steps:");
    report_caps(&m, &mut log);
    let evt = vm_setup(&m, &mut log);
    m.write(LOAD_ADDR, guest!("pvh_gdt"))?;
    m.write_u32(PVH_INFO, 0x336e_c578)?;
    println!("vCPU 0 steps:");
    let vcpu = m.vm.create_vcpu(0).map_err(|e| kerr(&e))?;
    vcpu_setup(&m, &vcpu, 0, &mut log);
    // Read-backs.
    let mut rb = kvm_bindings::Msrs::from_entries(&crate::setup::boot_msrs()).unwrap();
    let r = vcpu.get_msrs(&mut rb).map(|n| {
        let v: Vec<String> =
            rb.as_slice()[..n].iter().map(|e| format!("{:#x}={:#x}", e.index, e.data)).collect();
        v.join(" ")
    });
    log.rec("get_msrs read-back", r.map_err(|e| kerr(&e)));
    log.rec(
        "get_fpu read-back",
        vcpu.get_fpu().map(|f| format!("fcw={:#x} mxcsr={:#x}", f.fcw, f.mxcsr)).map_err(|e| kerr(&e)),
    );
    log.rec(
        "get_mp_state(vcpu0)",
        vcpu.get_mp_state().map(|s| format!("mp_state={}", s.mp_state)).map_err(|e| kerr(&e)),
    );
    log.rec("get_xsave", vcpu.get_xsave().map(|_| "ok".into()).map_err(|e| kerr(&e)));
    log.rec("get_xcrs", vcpu.get_xcrs().map(|x| format!("nr_xcrs={} xcr0={:#x}", x.nr_xcrs, x.xcrs[0].value)).map_err(|e| kerr(&e)));
    log.rec("get_vcpu_events", vcpu.get_vcpu_events().map(|_| "ok".into()).map_err(|e| kerr(&e)));
    println!("vCPU 1 steps:");
    match m.vm.create_vcpu(1) {
        Ok(v1) => {
            log.rec("create_vcpu(1)", Ok("ok".into()));
            vcpu_setup(&m, &v1, 1, &mut log);
            log.rec(
                "get_mp_state(vcpu1)",
                v1.get_mp_state().map(|s| format!("mp_state={} (1 = UNINITIALIZED, waits for INIT/SIPI)", s.mp_state)).map_err(|e| kerr(&e)),
            );
        }
        Err(e) => {
            log.rec("create_vcpu(1)", Err(kerr(&e)));
        }
    }
    println!("Running the PVH (GDT) probe on vCPU 0 after the full set-up:");
    setup_mode(&m, &vcpu, Mode::Pm32Gdt)?;
    set_entry_regs(&vcpu, LOAD_ADDR, |r| r.rbx = PVH_INFO)?;
    let trigger = evt.map(IrqTrigger::Evt).unwrap_or(IrqTrigger::Noop);
    let dev = Devices::new(trigger, true);
    run_simple(ctx, "setup+pvh", Built { m, vcpu, dev }, Duration::from_secs(5));
    let failed: Vec<&str> =
        log.lines.iter().filter(|(_, ok, _)| !ok).map(|(s, _, _)| s.as_str()).collect();
    println!("FAILED steps: {failed:?}");
    Ok(())
}

/// Two vCPUs. `sipi = false`: the VMM starts the AP directly in 32-bit PM at 0x100800.
/// `sipi = true`: the BSP starts the AP with INIT+SIPI through the in-kernel LAPIC.
pub fn smp(ctx: &Ctx, sipi: bool) -> Res<()> {
    let full = ctx.full || sipi;
    let m = Machine::new(MEM_SIZE)?;
    let mut log = StepLog::new(!ctx.quiet);
    let evt = if full {
        vm_setup(&m, &mut log)
    } else {
        m.register_memory()?;
        None
    };
    m.write(LOAD_ADDR, guest!("smp"))?;
    m.write_u32(SELECT_ADDR, if sipi { 2 } else { 1 })?;
    m.write_u32(0x5100, 0)?; // AP-alive flag
    let bsp = m.vm.create_vcpu(0).map_err(|e| kerr(&e))?;
    let ap = m.vm.create_vcpu(1).map_err(|e| kerr(&e))?;
    if full {
        vcpu_setup(&m, &bsp, 0, &mut log);
        vcpu_setup(&m, &ap, 1, &mut log);
    }
    setup_mode(&m, &bsp, Mode::Pm32Gdt)?;
    set_entry_regs(&bsp, LOAD_ADDR, |_| {})?;
    log.rec(
        "AP get_mp_state (before)",
        ap.get_mp_state().map(|s| format!("mp_state={}", s.mp_state)).map_err(|e| kerr(&e)),
    );
    if !sipi {
        setup_mode(&m, &ap, Mode::Pm32Gdt)?;
        set_entry_regs(&ap, LOAD_ADDR + 0x800, |_| {})?;
        if full {
            log.rec(
                "AP set_mp_state(RUNNABLE)",
                ap.set_mp_state(kvm_mp_state { mp_state: KVM_MP_STATE_RUNNABLE })
                    .map(|_| "ok".into())
                    .map_err(|e| kerr(&e)),
            );
        }
    }
    let trigger = evt.map(IrqTrigger::Evt).unwrap_or(IrqTrigger::Noop);
    let dev = Devices::new(trigger, !ctx.quiet);
    let t_ap = spawn_vcpu(ap, dev.clone(), RunOpts::default());
    let t_bsp = spawn_vcpu(bsp, dev.clone(), RunOpts::default());
    let (_b, rb, kb) = t_bsp.join_with_watchdog(Duration::from_secs(10));
    let (ap, ra, ka) = t_ap.join_with_watchdog(Duration::from_secs(2));
    print_report("smp BSP (vcpu 0)", &rb, &dev, kb);
    println!("--- [smp AP (vcpu 1)] stop: {}{}", ra.stop, if ka { " (watchdog kicked)" } else { "" });
    println!("    exits ({} total): {}", ra.total_exits, ra.exit_summary());
    println!("    AP final regs:\n  {}\n{}", ra.regs, ra.sregs);
    println!(
        "    AP mp_state after: {:?}; flag@0x5100 = {:#x}",
        ap.get_mp_state().map(|s| s.mp_state).map_err(|e| kerr(&e)),
        m.read_u32(0x5100)?
    );
    Ok(())
}

// ---------------------------------------------------------------- Q5 hostile guests

pub fn fault(ctx: &Ctx, which: &str) -> Res<()> {
    let image: &[u8] = match which {
        "triple-int3" => guest!("zero_idt_int3"),
        "triple-ud2" => guest!("zero_idt_ud2"),
        "int3-noidt" => guest!("no_idt_int3"),
        "int3-idt" => guest!("idt_int3"),
        "intn3-idt" => guest!("idt_intn3"),
        "ud2-idt" => guest!("idt_ud2"),
        "int80-idt" => guest!("idt_int80"),
        _ => return Err(format!("unknown fault probe {which}")),
    };
    let b = build(ctx, image, Mode::Pm32Gdt, |_| Ok(()), |_| {})?;
    let rep = run_simple(ctx, which, b, Duration::from_secs(3));
    if let Stop::RunErr { .. } = rep.stop {
        println!("    NOTE: guest never reached a terminal exit; the watchdog interrupted it.");
    }
    Ok(())
}

/// Q5c: guest spins in `jmp .`; interrupt KVM_RUN with SIGRTMIN (pthread_kill).
pub fn loop_signal(ctx: &Ctx) -> Res<()> {
    let b = build(ctx, guest!("loop"), Mode::Pm32Gdt, |_| Ok(()), |_| {})?;
    let dev = b.dev.clone();
    let mut vcpu = b.vcpu;
    let mut lat = Vec::new();
    for round in 1..=10 {
        let th = spawn_vcpu(vcpu, dev.clone(), RunOpts::default());
        std::thread::sleep(Duration::from_millis(if round == 1 { 300 } else { 100 }));
        let still = th.rx.try_recv().is_err();
        let t_kill = mono_ns();
        let kill = th.handle.kill(SIGRTMIN());
        let (v, rep) = th
            .rx
            .recv_timeout(Duration::from_secs(3))
            .map_err(|_| "vCPU did NOT return within 3 s of SIGRTMIN".to_string())?;
        let l = (rep.t_end as f64 - t_kill as f64) / 1e3;
        lat.push(l);
        if round <= 2 {
            println!(
                "round {round}: still running before kick: {still}; Killable::kill(SIGRTMIN) -> {:?}; KVM_RUN returned {l:.1} us later: {}; exits: {}",
                kill.map_err(|e| kerr(&e)),
                rep.stop,
                rep.exit_summary()
            );
            println!("{}", rep.regs);
        } else {
            println!("round {round}: still running: {still}; {} after {l:.1} us", rep.stop);
        }
        vcpu = v;
    }
    let lo = lat.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = lat.iter().cloned().fold(0.0, f64::max);
    println!("signal -> KVM_RUN return latency over {} rounds: median {:.1} us (min {lo:.1}, max {hi:.1})", lat.len(), median(&mut lat));
    println!("serial: {:?}", dev.output());
    Ok(())
}

/// Q5c: does writing kvm_run.immediate_exit from another thread stop a running KVM_RUN?
pub fn loop_immediate_exit(ctx: &Ctx) -> Res<()> {
    let b = build(ctx, guest!("loop"), Mode::Pm32Gdt, |_| Ok(()), |_| {})?;
    let dev = b.dev.clone();
    let mut vcpu = b.vcpu;
    install_kick_handler();
    let (ptx, prx) = mpsc::channel::<usize>();
    let (rtx, rrx) = mpsc::channel::<(String, RunReport)>();
    let d2 = dev.clone();
    let handle = std::thread::spawn(move || {
        let p = vcpu.get_kvm_run() as *mut kvm_run as usize;
        ptx.send(p).unwrap();
        let r1 = run_vcpu(&mut vcpu, &d2, &RunOpts::default());
        rtx.send(("1st KVM_RUN".into(), r1)).unwrap();
        // immediate_exit is still 1 here: KVM_RUN should return EINTR without entering.
        let r2 = run_vcpu(&mut vcpu, &d2, &RunOpts { max_exits: 1, ..Default::default() });
        rtx.send(("2nd KVM_RUN (immediate_exit still 1)".into(), r2)).unwrap();
        vcpu.set_kvm_immediate_exit(0);
        vcpu
    });
    let p = prx.recv().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: `p` points at the vCPU's kvm_run mmap, which stays mapped while the vCPU thread
    // owns the VcpuFd (it is joined below). `immediate_exit` is a u8 the kernel only reads;
    // an atomic byte store is the intended cross-thread protocol for it.
    let ie = unsafe { &*(std::ptr::addr_of_mut!((*(p as *mut kvm_run)).immediate_exit) as *const AtomicU8) };
    ie.store(1, Ordering::SeqCst);
    match rrx.recv_timeout(Duration::from_secs(1)) {
        Ok((l, r)) => println!("immediate_exit=1 alone: {l} returned: {}", r.stop),
        Err(_) => println!("immediate_exit=1 alone: KVM_RUN did NOT return within 1 s (guest still in jmp .)"),
    }
    let t_kill = mono_ns();
    let _ = handle.kill(SIGRTMIN());
    for _ in 0..2 {
        match rrx.recv_timeout(Duration::from_secs(3)) {
            Ok((l, r)) => println!(
                "{l}: {} ({:.1} us after the signal; KVM_RUN itself took {:.1} us)",
                r.stop,
                (r.t_end as f64 - t_kill as f64) / 1e3,
                (r.t_end as f64 - r.t_start as f64) / 1e3
            ),
            Err(_) => println!("no report within 3 s"),
        }
    }
    let _ = handle.join();
    println!("serial: {:?}", dev.output());
    Ok(())
}

/// Q5d: exits per second for unclaimed PIO/MMIO.
pub fn storm(ctx: &Ctx) -> Res<()> {
    let b = build(ctx, guest!("storm"), Mode::Pm32Gdt, |_| Ok(()), |_| {})?;
    let rep = run_simple(ctx, "storm", b, Duration::from_secs(120));
    let names = ["", "inb 0x510 (IoIn)", "outb 0x511 (IoOut)", "MMIO read 0xd0000000", "MMIO write 0xd0000000", "compute 10M dec/jnz"];
    for w in rep.markers.windows(2) {
        let (p, t0, e0) = w[0];
        let (_, t1, e1) = w[1];
        let n = e1 - e0 - 1; // minus the marker exit itself
        let dt = (t1 - t0) as f64 / 1e9;
        if p == 5 {
            println!("phase 5 compute: 20M guest instructions in {dt:.3} s = {:.1} ns/instruction ({n} exits)", dt * 1e9 / 20e6);
            continue;
        }
        println!(
            "phase {p} {:<24} {n} exits in {:.3} s = {:.0} exits/s ({:.2} us/exit)",
            names.get(p as usize).unwrap_or(&"?"),
            dt,
            n as f64 / dt,
            dt * 1e6 / n as f64
        );
    }
    Ok(())
}

/// Extra: single instructions reported to break Linux on this host (long mode, full set-up
/// so CPUID allows OSXSAVE).
pub fn insn(ctx: &Ctx, test: u32) -> Res<()> {
    let full = Ctx { full: true, quiet: ctx.quiet, timing: false, t_main: ctx.t_main };
    let b = build(&full, guest!("insn64"), Mode::Long64, |m| m.write_u32(SELECT_ADDR, test), |_| {})?;
    run_simple(&full, &format!("insn test {test}"), b, Duration::from_secs(60));
    Ok(())
}

/// Q7: vm-superio serial IRQ 4 via EventFd + irqfd into the in-kernel PIC.
pub fn serial_irq(ctx: &Ctx) -> Res<()> {
    let full = Ctx { full: true, quiet: ctx.quiet, timing: false, t_main: ctx.t_main };
    let b = build(&full, guest!("serialirq"), Mode::Pm32Gdt, |_| Ok(()), |_| {})?;
    run_simple(&full, "serial-irq", b, Duration::from_secs(10));
    Ok(())
}

// ---------------------------------------------------------------- Q6 timing

pub fn bench(args: &[String]) -> Res<()> {
    let runs: usize = std::env::var("BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let probe_args: Vec<String> = if args.is_empty() { vec!["pvh-gdt".into()] } else { args.to_vec() };
    let mut fields: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    let mut failures = 0;
    for _ in 0..runs {
        let t0 = mono_ns();
        let out = Command::new(&exe)
            .args(&probe_args)
            .args(["--quiet", "--timing"])
            .env("KVM_PROBE_T0_NS", t0.to_string())
            .output()
            .map_err(|e| e.to_string())?;
        let t1 = mono_ns();
        fields.entry("parent_spawn_to_wait_us".into()).or_default().push((t1 - t0) as f64 / 1e3);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let Some(line) = stderr.lines().find(|l| l.starts_with("TIMING ")) else {
            failures += 1;
            eprintln!("no TIMING line; stderr: {stderr}");
            continue;
        };
        for kv in line.split_whitespace().skip(1) {
            if let Some((k, v)) = kv.split_once('=') {
                if let Ok(x) = v.parse::<f64>() {
                    fields.entry(k.into()).or_default().push(x);
                } else if k == "stop_ok" && v != "true" {
                    failures += 1;
                }
            }
        }
    }
    println!("bench {:?}: {runs} runs, {failures} failures; medians (min..max):", probe_args);
    for (k, v) in fields.iter_mut() {
        let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        println!("  {k:<26} {:>10.1}   ({lo:.1} .. {hi:.1})", median(v));
    }
    Ok(())
}

pub fn all() -> Res<()> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    for p in crate::PROBES.iter().map(|(n, _)| *n).filter(|n| *n != "all" && *n != "bench") {
        println!("=================== {p}");
        let st = Command::new(&exe).arg(p).status().map_err(|e| e.to_string())?;
        println!("=================== {p}: process exit status {st}");
    }
    Ok(())
}

/// Q6 follow-up: cost of KVM_SET_USER_MEMORY_REGION depending on what was created before it.
pub fn order(_ctx: &Ctx) -> Res<()> {
    use crate::setup::{IDENTITY_MAP_ADDR, TSS_ADDR};
    let variants: &[(&str, &[&str])] = &[
        ("memory first", &["mem", "tss", "idmap", "irqchip", "pit2"]),
        ("memory last", &["tss", "idmap", "irqchip", "pit2", "mem"]),
        ("tss only, then memory", &["tss", "mem"]),
        ("idmap only, then memory", &["idmap", "mem"]),
        ("irqchip only, then memory", &["irqchip", "mem"]),
        ("pit2 only, then memory", &["pit2", "mem"]),
    ];
    for (name, steps) in variants {
        let m = Machine::new(MEM_SIZE)?;
        let mut line = format!("{name:<28}");
        for st in *steps {
            let t = mono_ns();
            let r = match *st {
                "mem" => m.register_memory(),
                "tss" => m.vm.set_tss_address(TSS_ADDR).map_err(|e| kerr(&e)),
                "idmap" => m.vm.set_identity_map_address(IDENTITY_MAP_ADDR).map_err(|e| kerr(&e)),
                "irqchip" => m.vm.create_irq_chip().map_err(|e| kerr(&e)),
                "pit2" => m
                    .vm
                    .create_pit2(kvm_bindings::kvm_pit_config {
                        flags: kvm_bindings::KVM_PIT_SPEAKER_DUMMY,
                        ..Default::default()
                    })
                    .map_err(|e| kerr(&e)),
                _ => unreachable!(),
            };
            line += &format!(" {st}={:.0}us{}", (mono_ns() - t) as f64 / 1e3, r.err().map(|e| format!("(ERR {e})")).unwrap_or_default());
        }
        let t = mono_ns();
        let v = m.vm.create_vcpu(0).map_err(|e| kerr(&e))?;
        line += &format!(" create_vcpu={:.0}us", (mono_ns() - t) as f64 / 1e3);
        drop(v);
        println!("{line}");
    }
    Ok(())
}
