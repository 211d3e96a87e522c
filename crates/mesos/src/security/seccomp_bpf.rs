//! Compiles a resolved seccomp profile to classic BPF (linux/filter.h,
//! `struct seccomp_data`; Documentation/userspace-api/seccomp_filter.rst).
//!
//! Layout: the architecture check (a foreign architecture, or on x86_64
//! the x32 ABI, gets `EPERM`), then a binary search over the system call
//! numbers the profile names (`JGE` splits down to leaves of a few `JEQ`s),
//! then each number's rules in profile order (first match wins; a rule
//! that fails its argument checks falls through to the next rule of the
//! same number), and the default action for everything else.
//!
//! A rule only ever matches its own number, so grouping the rules by
//! number keeps the profile's first-match meaning, while a call is decided
//! in about log2(n) + a few comparisons instead of one per listed name.
//! That matters twice: every system call the command makes runs the
//! filter, and when the filter is attached the kernel runs it once per
//! system call number and architecture to find the calls it may allow
//! without running it (`seccomp_cache_prepare`, with interrupts off).

use std::collections::BTreeMap;

use phobos_core::SeccompProfile;
use phobos_core::hardening::{SeccompAction, SeccompArg, SeccompOp, SeccompRule};

use super::{AUDIT_ARCH, syscall_number};

/// `BPF_LD | BPF_W | BPF_ABS` (0x00 | 0x00 | 0x20).
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JA: u16 = 0x05;
const BPF_JMP_JEQ_K: u16 = 0x05 | 0x10;
const BPF_JMP_JGT_K: u16 = 0x05 | 0x20;
const BPF_JMP_JGE_K: u16 = 0x05 | 0x30;
const BPF_ALU_AND_K: u16 = 0x04 | 0x50;
const BPF_RET_K: u16 = 0x06;

/// Offsets in `struct seccomp_data`.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;
const DATA_ARGS: u32 = 16;

/// The most instructions a filter may have (BPF_MAXINSNS).
const MAX_INSNS: usize = 4096;

/// The most numbers in one leaf of the search (a chain of `JEQ`s).
const LEAF: usize = 6;

fn ret_value(action: SeccompAction) -> u32 {
    match action {
        SeccompAction::Allow => 0x7fff_0000,
        SeccompAction::Errno(e) => 0x0005_0000 | u32::from(e),
        SeccompAction::KillThread => 0,
        SeccompAction::KillProcess => 0x8000_0000,
        SeccompAction::Trap => 0x0003_0000,
        SeccompAction::Trace(n) => 0x7ff0_0000 | u32::from(n),
        SeccompAction::Log => 0x7ffc_0000,
    }
}

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    jump(code, k, 0, 0)
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// A jump target inside one rule's block.
#[derive(Clone, Copy)]
enum To {
    Next,
    /// The end of the block: the rule does not match.
    Fail,
    /// Skip this many instructions.
    Ahead(u8),
}

enum Insn {
    Stmt(u16, u32),
    Jump(u16, u32, To, To),
}

fn arg_words(a: &SeccompArg) -> (u32, u32) {
    let lo = DATA_ARGS + 8 * u32::from(a.index);
    // Little-endian: the low word first.
    (lo + 4, lo)
}

fn emit_arg(a: &SeccompArg, out: &mut Vec<Insn>) {
    use Insn::{Jump, Stmt};
    let (hi_at, lo_at) = arg_words(a);
    let (hi, lo) = ((a.value >> 32) as u32, a.value as u32);
    match a.op {
        SeccompOp::Eq => out.extend([
            Stmt(BPF_LD_W_ABS, hi_at),
            Jump(BPF_JMP_JEQ_K, hi, To::Next, To::Fail),
            Stmt(BPF_LD_W_ABS, lo_at),
            Jump(BPF_JMP_JEQ_K, lo, To::Next, To::Fail),
        ]),
        SeccompOp::Ne => out.extend([
            Stmt(BPF_LD_W_ABS, hi_at),
            Jump(BPF_JMP_JEQ_K, hi, To::Next, To::Ahead(2)),
            Stmt(BPF_LD_W_ABS, lo_at),
            Jump(BPF_JMP_JEQ_K, lo, To::Fail, To::Next),
        ]),
        SeccompOp::MaskedEq => {
            let (whi, wlo) = ((a.value_two >> 32) as u32, a.value_two as u32);
            out.extend([
                Stmt(BPF_LD_W_ABS, hi_at),
                Stmt(BPF_ALU_AND_K, hi),
                Jump(BPF_JMP_JEQ_K, whi, To::Next, To::Fail),
                Stmt(BPF_LD_W_ABS, lo_at),
                Stmt(BPF_ALU_AND_K, lo),
                Jump(BPF_JMP_JEQ_K, wlo, To::Next, To::Fail),
            ])
        }
        SeccompOp::Gt | SeccompOp::Ge => out.extend([
            Stmt(BPF_LD_W_ABS, hi_at),
            Jump(BPF_JMP_JGT_K, hi, To::Ahead(3), To::Next),
            Jump(BPF_JMP_JEQ_K, hi, To::Next, To::Fail),
            Stmt(BPF_LD_W_ABS, lo_at),
            Jump(
                if a.op == SeccompOp::Gt {
                    BPF_JMP_JGT_K
                } else {
                    BPF_JMP_JGE_K
                },
                lo,
                To::Next,
                To::Fail,
            ),
        ]),
        SeccompOp::Lt | SeccompOp::Le => out.extend([
            Stmt(BPF_LD_W_ABS, hi_at),
            Jump(BPF_JMP_JGT_K, hi, To::Fail, To::Next),
            Jump(BPF_JMP_JEQ_K, hi, To::Next, To::Ahead(2)),
            Stmt(BPF_LD_W_ABS, lo_at),
            Jump(
                if a.op == SeccompOp::Lt {
                    BPF_JMP_JGE_K
                } else {
                    BPF_JMP_JGT_K
                },
                lo,
                To::Fail,
                To::Next,
            ),
        ]),
    }
}

/// One rule of system call `name`: its argument checks, then its action;
/// a failed check jumps past the block.
fn rule_block(rule: &SeccompRule, name: &str) -> Result<Vec<libc::sock_filter>, String> {
    let mut block = Vec::new();
    for a in &rule.args {
        emit_arg(a, &mut block);
    }
    block.push(Insn::Stmt(BPF_RET_K, ret_value(rule.action)));
    let len = block.len();
    let mut out = Vec::with_capacity(len);
    for (i, insn) in block.into_iter().enumerate() {
        let offset = |to: To| -> Result<u8, String> {
            let n = match to {
                To::Next => 0,
                To::Ahead(n) => usize::from(n),
                To::Fail => len - i - 1,
            };
            u8::try_from(n).map_err(|_| format!("a rule for {name} is too long"))
        };
        out.push(match insn {
            Insn::Stmt(code, k) => stmt(code, k),
            Insn::Jump(code, k, t, f) => jump(code, k, offset(t)?, offset(f)?),
        });
    }
    Ok(out)
}

/// What one system call number does: its rules' blocks in profile order
/// then the default, or (the common case) one action with no checks.
enum Body {
    Action(u32),
    Code(Vec<libc::sock_filter>),
}

/// The rules of every named system call this architecture has, by number
/// (ascending), each number's in profile order. Rules after one with no
/// argument checks can never match and are left out.
fn bodies(profile: &SeccompProfile) -> Result<Vec<(u32, Body)>, String> {
    let mut by_nr: BTreeMap<u32, Vec<(&SeccompRule, &str)>> = BTreeMap::new();
    for rule in &profile.rules {
        for name in &rule.names {
            if let Some(nr) = syscall_number(name) {
                by_nr.entry(nr).or_default().push((rule, name));
            }
        }
    }
    let default = ret_value(profile.default_action);
    let mut out = Vec::with_capacity(by_nr.len());
    for (nr, rules) in by_nr {
        let body = match rules.first() {
            Some((rule, _)) if rule.args.is_empty() => Body::Action(ret_value(rule.action)),
            _ => {
                let mut code = Vec::new();
                let mut falls_through = true;
                for (rule, name) in rules {
                    code.extend(rule_block(rule, name)?);
                    if rule.args.is_empty() {
                        falls_through = false;
                        break;
                    }
                }
                if falls_through {
                    code.push(stmt(BPF_RET_K, default));
                }
                Body::Code(code)
            }
        };
        out.push((nr, body));
    }
    Ok(out)
}

/// A leaf of the search, with the number in the accumulator: one `JEQ`
/// per number, the default, then the numbers' actions (shared) and code.
/// Entirely forward jumps inside the leaf; a `JEQ` whose target is more
/// than 255 instructions on gets a `JA` after it instead.
fn leaf(nrs: &[(u32, Body)], default: u32) -> Vec<libc::sock_filter> {
    // The tail: the default, every distinct action once, every code body.
    let mut tail = vec![stmt(BPF_RET_K, default)];
    let mut targets = Vec::with_capacity(nrs.len());
    for (_, body) in nrs {
        let at = match body {
            Body::Action(k) => match tail.iter().position(|i| i.code == BPF_RET_K && i.k == *k) {
                Some(at) => at,
                None => {
                    tail.push(stmt(BPF_RET_K, *k));
                    tail.len() - 1
                }
            },
            Body::Code(code) => {
                tail.extend_from_slice(code);
                tail.len() - code.len()
            }
        };
        targets.push(at);
    }
    let n = nrs.len();
    let near = targets
        .iter()
        .enumerate()
        .all(|(i, at)| n - i - 1 + at <= usize::from(u8::MAX));
    let mut out = Vec::with_capacity(2 * n + tail.len());
    for (i, ((nr, _), at)) in nrs.iter().zip(&targets).enumerate() {
        if near {
            // Offsets from the next instruction: the JEQs left, then the
            // target's place in the tail.
            out.push(jump(BPF_JMP_JEQ_K, *nr, (n - i - 1 + at) as u8, 0));
        } else {
            out.push(jump(BPF_JMP_JEQ_K, *nr, 0, 1));
            out.push(stmt(BPF_JMP_JA, (2 * (n - i - 1) + at) as u32));
        }
    }
    out.extend(tail);
    out
}

/// The search over `nrs` (sorted), the number in the accumulator.
fn search(nrs: &[(u32, Body)], default: u32) -> Vec<libc::sock_filter> {
    if nrs.len() <= LEAF {
        return leaf(nrs, default);
    }
    let mid = nrs.len() / 2;
    let below = search(&nrs[..mid], default);
    let above = search(&nrs[mid..], default);
    let split = nrs[mid].0;
    let mut out = Vec::with_capacity(below.len() + above.len() + 2);
    match u8::try_from(below.len()) {
        Ok(skip) => out.push(jump(BPF_JMP_JGE_K, split, skip, 0)),
        Err(_) => {
            out.push(jump(BPF_JMP_JGE_K, split, 0, 1));
            out.push(stmt(BPF_JMP_JA, below.len() as u32));
        }
    }
    out.extend(below);
    out.extend(above);
    out
}

/// Compiles a resolved profile to a BPF program for this architecture.
/// Names this architecture does not have are skipped (as libseccomp
/// does for profiles written for several).
pub fn compile(profile: &SeccompProfile) -> Result<Vec<libc::sock_filter>, String> {
    if AUDIT_ARCH == 0 {
        return Err("seccomp filters are not supported on this architecture".to_owned());
    }
    let foreign = ret_value(SeccompAction::Errno(libc::EPERM as u16));
    let mut prog = vec![
        stmt(BPF_LD_W_ABS, DATA_ARCH),
        jump(BPF_JMP_JEQ_K, AUDIT_ARCH, 1, 0),
        stmt(BPF_RET_K, foreign),
        stmt(BPF_LD_W_ABS, DATA_NR),
    ];
    if cfg!(target_arch = "x86_64") {
        // The x32 ABI (numbers with bit 30) shares the audit arch.
        prog.push(jump(BPF_JMP_JGE_K, 0x4000_0000, 0, 1));
        prog.push(stmt(BPF_RET_K, foreign));
    }
    let default = ret_value(profile.default_action);
    prog.extend(search(&bodies(profile)?, default));
    if prog.len() > MAX_INSNS {
        return Err(format!(
            "seccomp profile {} compiles to {} instructions, above the kernel's {MAX_INSNS}",
            profile.source,
            prog.len()
        ));
    }
    Ok(prog)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::capabilities;
    use crate::security::seccomp::{default_profile, parse_profile};

    /// Runs `prog` on one `struct seccomp_data` (classic BPF as the kernel
    /// does, for the instructions the compiler emits): the return value
    /// and the number of instructions run.
    fn exec(prog: &[libc::sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> (u32, usize) {
        let word = |at: u32| -> u32 {
            match at {
                DATA_NR => nr,
                DATA_ARCH => arch,
                _ => {
                    let v = args[((at - DATA_ARGS) / 8) as usize];
                    if (at - DATA_ARGS).is_multiple_of(8) {
                        v as u32
                    } else {
                        (v >> 32) as u32
                    }
                }
            }
        };
        let (mut pc, mut a, mut steps) = (0usize, 0u32, 0usize);
        loop {
            let i = prog[pc];
            pc += 1;
            steps += 1;
            let cond = |taken: bool| usize::from(if taken { i.jt } else { i.jf });
            match i.code {
                BPF_LD_W_ABS => a = word(i.k),
                BPF_ALU_AND_K => a &= i.k,
                BPF_RET_K => return (i.k, steps),
                BPF_JMP_JA => pc += i.k as usize,
                BPF_JMP_JEQ_K => pc += cond(a == i.k),
                BPF_JMP_JGT_K => pc += cond(a > i.k),
                BPF_JMP_JGE_K => pc += cond(a >= i.k),
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    fn run(prog: &[libc::sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        exec(prog, arch, nr, args).0
    }

    /// What the profile says, read rule by rule in order (the meaning the
    /// compiled search must keep).
    fn reference(p: &SeccompProfile, numbers: &[Vec<u32>], nr: u32, args: [u64; 6]) -> u32 {
        let holds = |a: &SeccompArg| {
            let v = args[usize::from(a.index)];
            match a.op {
                SeccompOp::Eq => v == a.value,
                SeccompOp::Ne => v != a.value,
                SeccompOp::Lt => v < a.value,
                SeccompOp::Le => v <= a.value,
                SeccompOp::Gt => v > a.value,
                SeccompOp::Ge => v >= a.value,
                SeccompOp::MaskedEq => v & a.value == a.value_two,
            }
        };
        for (rule, nrs) in p.rules.iter().zip(numbers) {
            if nrs.contains(&nr) && rule.args.iter().all(holds) {
                return ret_value(rule.action);
            }
        }
        ret_value(p.default_action)
    }

    /// Every number below 1024 with a spread of argument values, on this
    /// architecture, decides as the rules read in order.
    fn assert_same(p: &SeccompProfile) {
        let prog = compile(p).unwrap();
        assert!(prog.len() <= MAX_INSNS);
        let numbers: Vec<Vec<u32>> = p
            .rules
            .iter()
            .map(|r| r.names.iter().filter_map(|n| syscall_number(n)).collect())
            .collect();
        let values = [
            0,
            1,
            2,
            3,
            0x7E02_0000,
            0x1_0000_0000,
            u64::MAX,
            (1 << 40) | 5,
        ];
        for nr in 0..1024 {
            for v in values {
                let args = [v, v ^ 1, 3, 0, v, 2];
                let got = run(&prog, AUDIT_ARCH, nr, args);
                assert_eq!(got, reference(p, &numbers, nr, args), "nr {nr} arg {v:#x}");
            }
        }
        let eperm = ret_value(SeccompAction::Errno(libc::EPERM as u16));
        assert_eq!(run(&prog, 0x4000_0003, 0, [0; 6]), eperm, "a foreign arch");
        if cfg!(target_arch = "x86_64") {
            assert_eq!(run(&prog, AUDIT_ARCH, 0x4000_0001, [0; 6]), eperm, "x32");
        }
    }

    #[test]
    fn the_search_decides_as_the_rules_in_order() {
        for bounding in [capabilities::default_mask(), capabilities::ALL, 0] {
            assert_same(&default_profile(bounding));
        }
        // Several rules per call, with arguments of every kind, a call
        // named twice, a rule that shadows later ones, a non-allow default.
        let text = r#"{
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
            "syscalls": [
                {"names": ["read", "write", "openat", "close"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["ioctl"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 1, "value": 2, "op": "SCMP_CMP_EQ"}]},
                {"names": ["ioctl"], "action": "SCMP_ACT_TRAP",
                 "args": [{"index": 0, "value": 4294967296, "op": "SCMP_CMP_GE"}]},
                {"names": ["ioctl", "fcntl"], "action": "SCMP_ACT_LOG",
                 "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_LT"},
                          {"index": 2, "value": 3, "op": "SCMP_CMP_NE"}]},
                {"names": ["fcntl"], "action": "SCMP_ACT_KILL_PROCESS"},
                {"names": ["fcntl"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 4294967295, "valueTwo": 1, "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_GT"}]},
                {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                 "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_LE"}]},
                {"names": ["no_such_call", "read"], "action": "SCMP_ACT_KILL"}
            ]
        }"#;
        assert_same(&parse_profile(text, "t.json", 0).unwrap());
        // A profile naming every call this architecture has: many leaves,
        // far jumps over big halves.
        let all: Vec<String> = super::super::table::TABLE
            .iter()
            .map(|(n, _)| (*n).to_owned())
            .collect();
        let big = SeccompProfile {
            source: "all".to_owned(),
            default_action: SeccompAction::KillProcess,
            rules: vec![
                SeccompRule {
                    names: all.clone(),
                    action: SeccompAction::Log,
                    args: vec![SeccompArg {
                        index: 0,
                        op: SeccompOp::Eq,
                        value: 3,
                        value_two: 0,
                    }],
                },
                SeccompRule {
                    names: all,
                    action: SeccompAction::Allow,
                    args: Vec::new(),
                },
            ],
        };
        assert_same(&big);
        assert_same(&SeccompProfile {
            source: "empty".to_owned(),
            default_action: SeccompAction::Allow,
            rules: Vec::new(),
        });
    }

    #[test]
    fn a_call_is_decided_in_a_few_comparisons() {
        let p = default_profile(capabilities::default_mask());
        let prog = compile(&p).unwrap();
        let listed = p.rules.iter().map(|r| r.names.len()).sum::<usize>();
        assert!(listed > 50, "{listed} names");
        // The old chain ran one comparison per listed name before the
        // default; the search runs about log2 of them plus a leaf.
        let most = (0..1024)
            .map(|nr| exec(&prog, AUDIT_ARCH, nr, [0; 6]).1)
            .max()
            .unwrap();
        assert!(most <= 24, "{most} instructions at most");
    }
}
