//! Assembles the probe guests in guests/ into flat binaries (loaded at 0x100000).
use std::path::PathBuf;
use std::process::Command;

/// (output name, source, extra preprocessor defines)
const GUESTS: &[(&str, &str, &[&str])] = &[
    ("pvh", "pvh.S", &[]),
    ("pvh_gdt", "pvh.S", &["-DRELOAD"]),
    ("linux64", "linux64.S", &[]),
    ("multiboot", "multiboot.S", &[]),
    ("zero_idt_int3", "fault.S", &["-DZERO_IDT_INT3"]),
    ("zero_idt_ud2", "fault.S", &["-DZERO_IDT_UD2"]),
    ("no_idt_int3", "fault.S", &["-DNO_IDT_INT3"]),
    ("idt_int3", "fault.S", &["-DIDT_INT3"]),
    ("idt_intn3", "fault.S", &["-DIDT_INTN3"]),
    ("idt_ud2", "fault.S", &["-DIDT_UD2"]),
    ("idt_int80", "fault.S", &["-DIDT_INT80"]),
    ("loop", "loop.S", &[]),
    ("storm", "storm.S", &[]),
    ("insn64", "insn64.S", &[]),
    ("smp", "smp.S", &[]),
    ("serialirq", "serialirq.S", &[]),
];

fn run(cmd: &mut Command) {
    let status = cmd.status().unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    assert!(status.success(), "{cmd:?} failed: {status}");
}

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let gdir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("guests");
    println!("cargo:rerun-if-changed=guests");
    for (name, src, defs) in GUESTS {
        let obj = out.join(format!("{name}.o"));
        let bin = out.join(format!("{name}.bin"));
        run(Command::new("cc")
            .args(["-c", "-nostdlib", "-ffreestanding", "-m64"])
            .args(*defs)
            .arg(format!("-Wa,-I,{}", gdir.display()))
            .arg(gdir.join(src))
            .arg("-o")
            .arg(&obj));
        run(Command::new("ld")
            .arg("-T")
            .arg(gdir.join("link.ld"))
            .arg("-o")
            .arg(&bin)
            .arg(&obj));
    }
}
