//! Bounded fuzzing: random bytes and random mutations of every peer
//! Dockerfile go through `parse_bytes`; nothing may panic, and every error
//! must render as a diagnostic. A fixed-seed xorshift keeps runs repeatable.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use xplat::dockerfile::{parse_bytes, render_diagnostic};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn peer_dockerfiles() -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/peer/buildkit-parser");
    let mut out = Vec::new();
    for sub in ["testfiles", "testfiles-negative", "testfile-line"] {
        let dir = root.join(sub);
        let mut paths: Vec<PathBuf> = if sub == "testfile-line" {
            vec![dir.join("Dockerfile")]
        } else {
            fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().path().join("Dockerfile"))
                .collect()
        };
        paths.sort();
        for p in paths {
            out.push(fs::read(&p).unwrap());
        }
    }
    out
}

/// Pieces that steer mutations into interesting parser paths.
const TOKENS: &[&[u8]] = &[
    b"\\",
    b"`",
    b"\n",
    b"\r\n",
    b"<<EOF",
    b"<<-'X'",
    b"EOF\n",
    b"[",
    b"]",
    b"\"",
    b"'",
    b"--",
    b"--mount=type=cache,target=/x",
    b"# escape=`\n",
    b"# syntax=x\n",
    b"ONBUILD ",
    b"FROM a AS b\n",
    b"HEALTHCHECK --interval=",
    b"\xff",
    b"\xc3",
    b"\xe2\x98\x83",
    b"=",
    b"ENV ",
    b" ",
    b"\t",
    b"#",
];

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(8) {
        let pos = rng.below(v.len() + 1);
        match rng.below(5) {
            0 if !v.is_empty() => {
                let end = (pos + rng.below(16)).min(v.len());
                v.drain(pos.min(end)..end);
            }
            1 => v.insert(pos, rng.next() as u8),
            2 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                v.splice(pos..pos, t.iter().copied());
            }
            3 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            _ => {
                let a = rng.below(v.len() + 1);
                let b = (a + rng.below(64)).min(v.len());
                let chunk = v[a..b].to_vec();
                v.splice(pos..pos, chunk);
            }
        }
    }
    v
}

#[test]
fn fuzz_parse_never_panics() {
    let seeds = peer_dockerfiles();
    assert!(
        seeds.len() >= 38,
        "peer Dockerfiles missing: {}",
        seeds.len()
    );
    let mut rng = Rng(0x9E3779B97F4A7C15);
    let budget = Duration::from_secs(3);
    let started = Instant::now();
    let (mut runs, mut ok) = (0usize, 0usize);
    while started.elapsed() < budget || runs < 2000 {
        let input = if runs % 10 == 0 {
            (0..rng.below(512)).map(|_| rng.next() as u8).collect()
        } else {
            let seed = &seeds[rng.below(seeds.len())];
            mutate(&mut rng, seed)
        };
        match parse_bytes(&input) {
            Ok(_) => ok += 1,
            Err(e) => {
                let text = String::from_utf8_lossy(&input);
                let rendered = render_diagnostic("Dockerfile", &text, &e);
                assert!(rendered.starts_with("Dockerfile:"), "{rendered}");
            }
        }
        runs += 1;
    }
    println!(
        "fuzz: {runs} inputs in {:?}, {ok} parsed, none panicked",
        started.elapsed()
    );
    assert!(
        ok > 0 && ok < runs,
        "mutations should produce both outcomes"
    );
}
