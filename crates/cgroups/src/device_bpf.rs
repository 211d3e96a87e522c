//! Device access control on cgroup2: a `BPF_PROG_TYPE_CGROUP_DEVICE`
//! program (bpf(2), `BPF_PROG_LOAD`) attached to a cgroup with
//! `BPF_PROG_ATTACH` / `BPF_CGROUP_DEVICE`, as runc and crun do, since
//! cgroup2 has no devices controller. The kernel runs the program on every
//! open(2) and mknod(2) of a device node by a process of the cgroup (and its
//! descendants); it returns 1 to allow and 0 to deny (`EPERM`).
//!
//! The program is generated here, instruction by instruction (no compiler,
//! no library), from rules in the cgroup v1 `devices.allow` format (`TYPE
//! MAJOR:MINOR ACCESS`, `TYPE` one of `a`, `c`, `b`, `*` for any number,
//! `ACCESS` a subset of `rwm`): everything is denied except what a rule
//! allows. The context is `struct bpf_cgroup_dev_ctx { u32 access_type;
//! u32 major; u32 minor; }` with `access_type = access << 16 | type`.
//!
//! The program is attached with `BPF_F_ALLOW_MULTI`, so programs of
//! ancestor cgroups (systemd's) still run too: access needs every one of
//! them to allow it. The attachment lives as long as the cgroup; removing
//! the cgroup detaches it.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// `BPF_DEVCG_DEV_BLOCK`, `BPF_DEVCG_DEV_CHAR`.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
/// `BPF_DEVCG_ACC_MKNOD`, `_READ`, `_WRITE`.
const ACC_MKNOD: u8 = 1;
const ACC_READ: u8 = 2;
const ACC_WRITE: u8 = 4;
const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// bpf(2) commands, program and attach types, flags (linux/bpf.h).
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// One rule of the allow list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceRule {
    /// `BPF_DEVCG_DEV_*`, `None` for `a` (any type).
    kind: Option<i32>,
    /// `None` for `*`.
    major: Option<u32>,
    minor: Option<u32>,
    /// `BPF_DEVCG_ACC_*` bits.
    access: u8,
}

/// A rule that does not parse, or a program the kernel refused.
#[derive(Debug, thiserror::Error)]
pub enum DeviceBpfError {
    /// Not `TYPE MAJOR:MINOR ACCESS`.
    #[error("invalid device rule {rule:?}: {reason}")]
    Rule { rule: String, reason: &'static str },
    /// A bpf(2) call failed (with the verifier's log when it has one).
    #[error("bpf({op}) for cgroup {}: {source}{log}", path.display())]
    Bpf {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
        log: String,
    },
    /// The cgroup directory cannot be opened.
    #[error("failed to open cgroup {}: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },
}

impl DeviceRule {
    /// Parses one `devices.allow` line: `a`, or `TYPE MAJOR:MINOR ACCESS`.
    pub fn parse(line: &str) -> Result<Self, DeviceBpfError> {
        let bad = |reason| DeviceBpfError::Rule {
            rule: line.to_owned(),
            reason,
        };
        let fields: Vec<&str> = line.split_whitespace().collect();
        let kind = match fields.first().copied() {
            Some("a") => None,
            Some("c") => Some(DEV_CHAR),
            Some("b") => Some(DEV_BLOCK),
            _ => return Err(bad("the type must be a, c or b")),
        };
        if fields.len() == 1 && kind.is_none() {
            return Ok(DeviceRule {
                kind,
                major: None,
                minor: None,
                access: ACC_ALL,
            });
        }
        let [_, numbers, access] = fields.as_slice() else {
            return Err(bad("expected TYPE MAJOR:MINOR ACCESS"));
        };
        let (major, minor) = numbers.split_once(':').ok_or(bad("expected MAJOR:MINOR"))?;
        let number = |s: &str| match s {
            "*" => Ok(None),
            n => n
                .parse::<u32>()
                .map(Some)
                .map_err(|_| bad("a device number must be a number or *")),
        };
        let mut bits = 0u8;
        for c in access.chars() {
            bits |= match c {
                'r' => ACC_READ,
                'w' => ACC_WRITE,
                'm' => ACC_MKNOD,
                _ => return Err(bad("the access must be a subset of rwm")),
            };
        }
        if bits == 0 {
            return Err(bad("the access must be a subset of rwm"));
        }
        Ok(DeviceRule {
            kind,
            major: number(major)?,
            minor: number(minor)?,
            access: bits,
        })
    }
}

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    /// dst_reg in the low nibble, src_reg in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

// Opcodes: class | op | source (linux/bpf_common.h, linux/bpf.h).
const LDX_MEM_W: u8 = 0x01 | 0x60; // BPF_LDX | BPF_MEM | BPF_W
const ALU64_AND_K: u8 = 0x07 | 0x50; // BPF_ALU64 | BPF_AND | BPF_K
const ALU64_RSH_K: u8 = 0x07 | 0x70;
const ALU64_MOV_K: u8 = 0x07 | 0xb0;
const ALU64_MOV_X: u8 = 0x07 | 0xb0 | 0x08;
const JMP_JNE_K: u8 = 0x05 | 0x50;
const JMP_JNE_X: u8 = 0x05 | 0x50 | 0x08;
const JMP_EXIT: u8 = 0x05 | 0x90;

/// The program for `rules`: registers r2 = type, r3 = access, r4 = major,
/// r5 = minor; per rule, a test of each field it constrains jumping to the
/// next rule on mismatch, then `return 1`; after the last rule `return 0`.
pub fn program(rules: &[DeviceRule]) -> Vec<Insn> {
    let mut out = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0),
        insn(ALU64_AND_K, 2, 0, 0, 0xffff),
        insn(LDX_MEM_W, 3, 1, 0, 0),
        insn(ALU64_RSH_K, 3, 0, 0, 16),
        insn(LDX_MEM_W, 4, 1, 4, 0),
        insn(LDX_MEM_W, 5, 1, 8, 0),
    ];
    for rule in rules {
        // The tests, each ending in a jump past the rest of the block.
        let mut tests: Vec<Vec<Insn>> = Vec::new();
        if let Some(kind) = rule.kind {
            tests.push(vec![insn(JMP_JNE_K, 2, 0, 0, kind)]);
        }
        if rule.access != ACC_ALL {
            // Allowed only if the requested bits are a subset: r1 = r3 & A; r1 != r3.
            tests.push(vec![
                insn(ALU64_MOV_X, 1, 3, 0, 0),
                insn(ALU64_AND_K, 1, 0, 0, i32::from(rule.access)),
                insn(JMP_JNE_X, 1, 3, 0, 0),
            ]);
        }
        if let Some(major) = rule.major {
            tests.push(vec![insn(JMP_JNE_K, 4, 0, 0, major as i32)]);
        }
        if let Some(minor) = rule.minor {
            tests.push(vec![insn(JMP_JNE_K, 5, 0, 0, minor as i32)]);
        }
        let len: usize = tests.iter().map(Vec::len).sum::<usize>() + 2;
        let mut emitted = 0;
        for test in tests {
            for mut i in test {
                emitted += 1;
                if i.code == JMP_JNE_K || i.code == JMP_JNE_X {
                    // Skip to the first instruction after this block.
                    i.off = (len - emitted) as i16;
                }
                out.push(i);
            }
        }
        out.push(insn(ALU64_MOV_K, 0, 0, 0, 1));
        out.push(insn(JMP_EXIT, 0, 0, 0, 0));
    }
    out.push(insn(ALU64_MOV_K, 0, 0, 0, 0));
    out.push(insn(JMP_EXIT, 0, 0, 0, 0));
    out
}

/// `union bpf_attr` for `BPF_PROG_LOAD`, up to `expected_attach_type`.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `union bpf_attr` for `BPF_PROG_ATTACH`.
#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, initialized #[repr(C)] prefix of `union
    // bpf_attr` for `cmd`, and its size is passed; the kernel reads (and for
    // some commands writes) only within that size. Pointers inside it point
    // to buffers the caller keeps alive for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Loads the program for `rules` and attaches it to the cgroup directory
/// `cgroup` (a cgroup2 directory), denying every other device.
pub fn restrict(cgroup: &Path, rules: &[DeviceRule]) -> Result<(), DeviceBpfError> {
    let dir = File::options()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(cgroup)
        .map_err(|source| DeviceBpfError::Open {
            path: cgroup.to_owned(),
            source,
        })?;
    let prog = load(&program(rules)).map_err(|(source, log)| DeviceBpfError::Bpf {
        op: "BPF_PROG_LOAD",
        path: cgroup.to_owned(),
        source,
        log,
    })?;
    let mut attr = ProgAttachAttr {
        target_fd: dir.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        replace_bpf_fd: 0,
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map_err(|source| DeviceBpfError::Bpf {
        op: "BPF_PROG_ATTACH",
        path: cgroup.to_owned(),
        source,
        log: String::new(),
    })?;
    Ok(())
}

/// `BPF_PROG_LOAD`; on failure, loads again with the verifier's log and
/// returns it (`: <log>`) with the error.
fn load(insns: &[Insn]) -> Result<OwnedFd, (io::Error, String)> {
    let license = b"GPL\0";
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        expected_attach_type: BPF_CGROUP_DEVICE,
        ..ProgLoadAttr::default()
    };
    attr.prog_name[..9].copy_from_slice(b"phobosdev");
    match bpf(BPF_PROG_LOAD, &mut attr) {
        // SAFETY: a successful BPF_PROG_LOAD returns a new descriptor we own.
        Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) }),
        Err(error) => {
            let mut log = vec![0u8; 64 * 1024];
            attr.log_level = 1;
            attr.log_size = log.len() as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
            if let Ok(fd) = bpf(BPF_PROG_LOAD, &mut attr) {
                // SAFETY: as above; it loaded the second time after all.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) });
            }
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]);
            let last = text.lines().rev().find(|l| !l.trim().is_empty());
            Err((error, last.map(|l| format!(": {l}")).unwrap_or_default()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_v1_allow_format() {
        assert_eq!(
            DeviceRule::parse("c 1:3 rwm").unwrap(),
            DeviceRule {
                kind: Some(DEV_CHAR),
                major: Some(1),
                minor: Some(3),
                access: ACC_ALL
            }
        );
        assert_eq!(
            DeviceRule::parse("b *:* m").unwrap(),
            DeviceRule {
                kind: Some(DEV_BLOCK),
                major: None,
                minor: None,
                access: ACC_MKNOD
            }
        );
        assert_eq!(DeviceRule::parse("a").unwrap().access, ACC_ALL);
        for bad in [
            "", "x 1:3 r", "c 1:3", "c 1-3 r", "c a:3 r", "c 1:3 rx", "c 1:3 ",
        ] {
            assert!(DeviceRule::parse(bad).is_err(), "{bad:?}");
        }
    }

    /// Runs the program on one access, as the kernel would (an interpreter
    /// of exactly the instructions `program` emits).
    fn run(prog: &[Insn], kind: i32, access: u8, major: u32, minor: u32) -> u64 {
        let ctx = [((access as u32) << 16) | kind as u32, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_MEM_W => r[dst] = u64::from(ctx[i.off as usize / 4]),
                ALU64_AND_K => r[dst] &= i.imm as i64 as u64,
                ALU64_RSH_K => r[dst] >>= i.imm,
                ALU64_MOV_K => r[dst] = i.imm as i64 as u64,
                ALU64_MOV_X => r[dst] = r[src],
                JMP_JNE_K if r[dst] != i.imm as i64 as u64 => pc += i.off as usize,
                JMP_JNE_X if r[dst] != r[src] => pc += i.off as usize,
                JMP_JNE_K | JMP_JNE_X => {}
                JMP_EXIT => return r[0],
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    #[test]
    fn the_program_allows_exactly_the_rules() {
        let rules: Vec<DeviceRule> = ["c *:* m", "c 1:3 rwm", "c 136:* rw", "b 8:0 r"]
            .iter()
            .map(|l| DeviceRule::parse(l).unwrap())
            .collect();
        let p = program(&rules);
        let (c, b) = (DEV_CHAR, DEV_BLOCK);
        assert_eq!(run(&p, c, ACC_READ | ACC_WRITE, 1, 3), 1, "/dev/null rw");
        assert_eq!(run(&p, c, ACC_MKNOD, 42, 7), 1, "mknod of any char node");
        assert_eq!(run(&p, b, ACC_MKNOD, 8, 1), 0, "no mknod of block nodes");
        assert_eq!(run(&p, c, ACC_READ, 1, 5), 0, "/dev/zero not listed");
        assert_eq!(run(&p, c, ACC_WRITE, 136, 9), 1, "pts/* rw");
        assert_eq!(run(&p, c, ACC_MKNOD, 136, 9), 1, "by the first rule");
        assert_eq!(run(&p, b, ACC_READ, 8, 0), 1, "sda r");
        assert_eq!(
            run(&p, b, ACC_READ | ACC_WRITE, 8, 0),
            0,
            "sda w is not allowed"
        );
        assert_eq!(run(&p, c, ACC_READ, 8, 0), 0, "the type matters");
        assert_eq!(run(&program(&[]), c, ACC_READ, 1, 3), 0, "empty: deny");
        let all = program(&[DeviceRule::parse("a").unwrap()]);
        assert_eq!(run(&all, b, ACC_ALL, 8, 0), 1, "a allows all");
    }
}
