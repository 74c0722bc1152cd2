//! A minimal tar writer with headers set field by field: ustar headers, PAX
//! extended headers for what ustar cannot hold (long names and link targets,
//! non-ASCII names, large sizes or ids), empty uname/gname, devmajor/minor 0.
//!
//! Written by hand rather than with `tar::Builder` so that every header byte is
//! chosen here: `tar::HeaderMode::Deterministic` overwrites modes and ids, and
//! the GNU long-name form would mix formats across runs (ENGINE-AND-REGISTRY §5).

use std::io::{self, Write};

const BLOCK: usize = 512;
/// Largest value an 11-digit octal field holds.
const MAX_OCTAL_11: u64 = 0o77_777_777_777;
/// Largest value a 7-digit octal field holds.
const MAX_OCTAL_7: u64 = 0o7_777_777;

/// Type flags written by xplat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TypeFlag {
    Regular,
    Hardlink,
    Symlink,
    Directory,
}

impl TypeFlag {
    fn byte(self) -> u8 {
        match self {
            TypeFlag::Regular => b'0',
            TypeFlag::Hardlink => b'1',
            TypeFlag::Symlink => b'2',
            TypeFlag::Directory => b'5',
        }
    }
}

/// One header's worth of metadata.
#[derive(Debug, Clone)]
pub(crate) struct Header<'a> {
    pub name: &'a str,
    pub link: &'a str,
    pub flag: TypeFlag,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    pub mtime: u64,
}

/// Writes tar headers and padding to `W`.
pub(crate) struct TarWriter<W: Write> {
    out: W,
}

impl<W: Write> TarWriter<W> {
    pub fn new(out: W) -> Self {
        TarWriter { out }
    }

    /// Writes the header (with a PAX header before it when needed). The caller then
    /// writes exactly `size` bytes of content with `write_content` and calls `pad`.
    pub fn header(&mut self, h: &Header<'_>) -> io::Result<()> {
        let mut pax: Vec<(&str, String)> = Vec::new();
        let name_fits = h.name.len() <= 100 && h.name.is_ascii();
        let (ustar_name, ustar_prefix) = if name_fits {
            (h.name.to_string(), String::new())
        } else if let Some((prefix, name)) = split_ustar(h.name) {
            (name.to_string(), prefix.to_string())
        } else {
            pax.push(("path", h.name.to_string()));
            (truncate_ascii(h.name, 100), String::new())
        };
        if h.link.len() > 100 || !h.link.is_ascii() {
            pax.push(("linkpath", h.link.to_string()));
        }
        if h.size > MAX_OCTAL_11 {
            pax.push(("size", h.size.to_string()));
        }
        if h.uid > MAX_OCTAL_7 {
            pax.push(("uid", h.uid.to_string()));
        }
        if h.gid > MAX_OCTAL_7 {
            pax.push(("gid", h.gid.to_string()));
        }
        if h.mtime > MAX_OCTAL_11 {
            pax.push(("mtime", h.mtime.to_string()));
        }
        if !pax.is_empty() {
            // Records sorted by key so the same entry always gives the same bytes.
            pax.sort();
            let body: Vec<u8> = pax.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
            let base = h
                .name
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or("");
            let pax_name = truncate_ascii(&format!("PaxHeaders.0/{base}"), 100);
            let block = raw_header(&pax_name, "", "", b'x', 0o644, 0, 0, body.len() as u64, 0);
            self.out.write_all(&block)?;
            self.out.write_all(&body)?;
            self.pad(body.len() as u64)?;
        }
        let block = raw_header(
            &ustar_name,
            &ustar_prefix,
            &truncate_ascii(h.link, 100),
            h.flag.byte(),
            h.mode,
            h.uid.min(MAX_OCTAL_7),
            h.gid.min(MAX_OCTAL_7),
            h.size.min(MAX_OCTAL_11),
            h.mtime.min(MAX_OCTAL_11),
        );
        self.out.write_all(&block)
    }

    /// Writes content bytes.
    pub fn write_content(&mut self, buf: &[u8]) -> io::Result<()> {
        self.out.write_all(buf)
    }

    /// The underlying writer, for streaming content with `io::copy`.
    pub fn content_writer(&mut self) -> &mut W {
        &mut self.out
    }

    /// Pads content of `size` bytes to a whole block.
    pub fn pad(&mut self, size: u64) -> io::Result<()> {
        let rem = (size % BLOCK as u64) as usize;
        if rem != 0 {
            self.out.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
        }
        Ok(())
    }

    /// Writes the two zero blocks that end an archive and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0u8; BLOCK * 2])?;
        Ok(self.out)
    }
}

/// Splits an ASCII name into a ustar (prefix ≤155, name ≤100) pair at a `/`, if possible.
fn split_ustar(name: &str) -> Option<(&str, &str)> {
    if !name.is_ascii() || name.len() > 256 {
        return None;
    }
    let bytes = name.as_bytes();
    // The last possible split point whose prefix fits in 155 bytes and name in 100.
    (1..bytes.len().min(156))
        .rev()
        .filter(|&i| bytes[i] == b'/')
        .map(|i| (&name[..i], &name[i + 1..]))
        .find(|(p, n)| p.len() <= 155 && !n.is_empty() && n.len() <= 100)
}

fn truncate_ascii(s: &str, max: usize) -> String {
    s.chars().filter(|c| c.is_ascii()).take(max).collect()
}

/// One PAX record: `"<len> <key>=<value>\n"`, where `<len>` counts the whole record.
fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let rest = key.len() + value.len() + 3; // space, '=', '\n'
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    format!("{len} {key}={value}\n").into_bytes()
}

#[allow(clippy::too_many_arguments)]
fn raw_header(
    name: &str,
    prefix: &str,
    link: &str,
    flag: u8,
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    mtime: u64,
) -> [u8; BLOCK] {
    let mut b = [0u8; BLOCK];
    put(&mut b[0..100], name.as_bytes());
    octal(&mut b[100..108], u64::from(mode & 0o7777));
    octal(&mut b[108..116], uid);
    octal(&mut b[116..124], gid);
    octal(&mut b[124..136], size);
    octal(&mut b[136..148], mtime);
    b[148..156].fill(b' ');
    b[156] = flag;
    put(&mut b[157..257], link.as_bytes());
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    // uname 265..297 and gname 297..329 stay empty.
    octal(&mut b[329..337], 0);
    octal(&mut b[337..345], 0);
    put(&mut b[345..500], prefix.as_bytes());
    let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
    let chk = format!("{sum:06o}\0 ");
    b[148..156].copy_from_slice(chk.as_bytes());
    b
}

fn put(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

/// Zero-padded octal with a trailing NUL, filling the field.
fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let s = format!("{value:0digits$o}");
    put(field, s.as_bytes());
    field[digits] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        assert_eq!(pax_record("path", "a"), b"9 path=a\n");
        let long = "x".repeat(95);
        let rec = pax_record("path", &long);
        let text = String::from_utf8(rec.clone()).unwrap();
        let n: usize = text.split(' ').next().unwrap().parse().unwrap();
        assert_eq!(n, rec.len());
    }

    #[test]
    fn headers_read_back_with_the_tar_crate() {
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(120));
        let mut w = TarWriter::new(Vec::new());
        for (name, size) in [("a.txt", 3u64), (long.as_str(), 2)] {
            w.header(&Header {
                name,
                link: "",
                flag: TypeFlag::Regular,
                mode: 0o4755,
                uid: 1000,
                gid: 3_000_000,
                size,
                mtime: 1_700_000_000,
            })
            .unwrap();
            w.write_content(&b"abc"[..size as usize]).unwrap();
            w.pad(size).unwrap();
        }
        let bytes = w.finish().unwrap();
        let mut ar = tar::Archive::new(&bytes[..]);
        let entries: Vec<_> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.mtime().unwrap(),
                    h.username().unwrap().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            entries[0],
            (
                "a.txt".to_string(),
                0o4755,
                1000,
                1_700_000_000,
                String::new()
            )
        );
        assert_eq!(entries[1].0, long);
    }
}
