//! Where the resident set lies, from `/proc/self/smaps` (Linux).
//!
//! A growth of RSS says that something grew, not what. The soak takes a
//! snapshot of its mappings whenever RSS reaches a new high in either half
//! of the run, and reports the difference between the two halves' highest
//! points by kind of mapping: glibc's main heap, its thread arenas, thread
//! stacks, the other anonymous mappings (large malloc chunks, which is where
//! a software driver such as lavapipe keeps its device memory, and the
//! driver's JIT code), and mapped files.
//!
//! Buffers are allocated once, before the soak's warm-up ends, and reused:
//! taking a snapshot must not itself show up as heap growth.

use std::fmt::Write as _;
use std::io::Read as _;

/// The exact resident set, from `/proc/self/smaps_rollup` (Linux 4.14+):
/// `(all, anonymous)` bytes. `/proc/self/status` is not exact: since Linux
/// 6.2 it reads per-CPU counters without summing them, off by up to 31
/// pages per CPU for each of its anonymous, file and shared parts (±0.7 MB
/// on two CPUs, ±6 MB on sixteen), as much as the growth a soak looks for.
/// The rollup walks the page tables instead (about 4 ms for 400 MB).
/// `text` is a reused buffer.
pub(crate) fn exact_rss(text: &mut String) -> Option<(u64, u64)> {
    text.clear();
    std::fs::File::open("/proc/self/smaps_rollup")
        .and_then(|mut f| f.read_to_string(text))
        .ok()?;
    Some((kb_field(text, "Rss:")?, kb_field(text, "Anonymous:")?))
}

/// The value of a `Name:   123 kB` line of a `/proc` file, in bytes.
pub(crate) fn kb_field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    let kb: u64 = line[name.len()..].split_whitespace().next()?.parse().ok()?;
    Some(kb * 1024)
}

/// What a mapping holds, as far as its address, size and name tell.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    /// `[heap]`: glibc's main arena, grown with `brk`.
    MainHeap,
    /// A glibc thread arena: anonymous, read-write, starting on a 64 MiB
    /// boundary (`HEAP_MAX_SIZE`) and at most 64 MiB long.
    MallocArena,
    /// A thread's stack: anonymous and read-write right above an
    /// inaccessible guard mapping, or `[stack]`.
    Stack,
    /// Any other anonymous mapping: malloc's large chunks (a software GPU's
    /// device memory among them), JIT code, the allocator's metadata.
    OtherAnon,
    /// A mapped file: libraries, mapped textures.
    File,
}

impl Kind {
    const ALL: [Kind; 5] = [
        Kind::MainHeap,
        Kind::MallocArena,
        Kind::Stack,
        Kind::OtherAnon,
        Kind::File,
    ];

    /// The name used in metrics (`rss_peak_growth_<name>_bytes`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::MainHeap => "main_heap",
            Kind::MallocArena => "malloc_arenas",
            Kind::Stack => "stacks",
            Kind::OtherAnon => "other_anon",
            Kind::File => "files",
        }
    }
}

/// One mapping's resident bytes.
#[derive(Clone, Copy, Debug)]
struct Mapping {
    start: u64,
    size: u64,
    kind: Kind,
    rss: u64,
}

/// The resident bytes of every mapping at one moment.
pub(crate) struct Snapshot {
    mappings: Vec<Mapping>,
    /// The RSS (from `/proc/self/status`) when the snapshot was taken.
    pub(crate) rss: u64,
    /// Seconds into the run.
    pub(crate) at_s: f64,
}

/// The boundary and largest size of a glibc thread arena's heap on 64-bit
/// targets (`HEAP_MAX_SIZE`, twice the largest mmap threshold of 32 MiB).
const ARENA_HEAP: u64 = 64 << 20;

impl Snapshot {
    /// An empty snapshot with room for `mappings` entries.
    pub(crate) fn with_capacity(mappings: usize) -> Self {
        Snapshot {
            mappings: Vec::with_capacity(mappings),
            rss: 0,
            at_s: 0.0,
        }
    }

    /// Whether it holds anything.
    pub(crate) fn is_taken(&self) -> bool {
        !self.mappings.is_empty()
    }

    /// Replaces the contents with the current mappings. `text` is a reused
    /// buffer for the file. Returns false where smaps cannot be read.
    pub(crate) fn take(&mut self, text: &mut String, rss: u64, at_s: f64) -> bool {
        text.clear();
        let read = std::fs::File::open("/proc/self/smaps").and_then(|mut f| f.read_to_string(text));
        if read.is_err() {
            return false;
        }
        self.mappings.clear();
        self.rss = rss;
        self.at_s = at_s;
        parse(text, &mut self.mappings);
        true
    }

    fn by_kind(&self) -> [u64; 5] {
        let mut sum = [0; 5];
        for m in &self.mappings {
            sum[Kind::ALL.iter().position(|&k| k == m.kind).unwrap_or(4)] += m.rss;
        }
        sum
    }
}

/// Parses smaps into `out`: the header line of each mapping gives its range,
/// permissions and name; its `Rss:` line, the resident kB.
fn parse(text: &str, out: &mut Vec<Mapping>) {
    // The previous header: an inaccessible anonymous mapping directly below
    // a read-write one marks a thread stack's guard.
    let mut guard_end = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Rss:") {
            if let (Some(last), Some(kb)) = (
                out.last_mut(),
                rest.split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok()),
            ) {
                last.rss = kb * 1024;
            }
            continue;
        }
        let Some((range, rest)) = line.split_once(' ') else {
            continue;
        };
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let perms = fields.next().unwrap_or("");
        // offset, device, inode, then the name if any.
        let name = fields.nth(3).unwrap_or("");
        let anon = name.is_empty() || name.starts_with("[anon");
        let size = end - start;
        let kind = if name == "[heap]" {
            Kind::MainHeap
        } else if name == "[stack]" {
            Kind::Stack
        } else if anon && perms.starts_with("rw") && start % ARENA_HEAP == 0 && size <= ARENA_HEAP {
            Kind::MallocArena
        } else if anon && perms.starts_with("rw") && guard_end == Some(start) {
            Kind::Stack
        } else if anon {
            Kind::OtherAnon
        } else {
            Kind::File
        };
        guard_end = (anon && perms.starts_with("---")).then_some(end);
        out.push(Mapping {
            start,
            size,
            kind,
            rss: 0,
        });
    }
}

/// How the resident bytes changed from `a` to `b`, by kind, and the
/// mappings that changed most: `(per-kind growth, description)`.
pub(crate) fn diff(a: &Snapshot, b: &Snapshot) -> ([(Kind, f64); 5], String) {
    let (ka, kb) = (a.by_kind(), b.by_kind());
    let mut kinds = [(Kind::MainHeap, 0.0); 5];
    for (i, k) in Kind::ALL.iter().enumerate() {
        kinds[i] = (*k, kb[i] as f64 - ka[i] as f64);
    }
    // Mappings are matched by start address; one present in only one
    // snapshot counts in full.
    let mut changes: Vec<(i64, Mapping)> = Vec::new();
    for m in &b.mappings {
        let before = a
            .mappings
            .iter()
            .find(|o| o.start == m.start)
            .map_or(0, |o| o.rss);
        if m.rss != before {
            changes.push((m.rss as i64 - before as i64, *m));
        }
    }
    for m in &a.mappings {
        if m.rss > 0 && !b.mappings.iter().any(|o| o.start == m.start) {
            changes.push((-(m.rss as i64), *m));
        }
    }
    changes.sort_by_key(|(d, _)| std::cmp::Reverse(d.unsigned_abs()));
    // The mappings are read a few milliseconds after the RSS sample, while
    // other threads allocate and free: their sum is given beside it.
    let sum = |k: [u64; 5]| k.iter().sum::<u64>() as f64 / 1e6;
    let mut text = format!(
        "RSS peaks at {:.0} s ({:.2} MB; its mappings {:.2} MB) and {:.0} s ({:.2} MB; {:.2} MB), \
         by kind of mapping (kB):",
        a.at_s,
        a.rss as f64 / 1e6,
        sum(ka),
        b.at_s,
        b.rss as f64 / 1e6,
        sum(kb),
    );
    for (k, d) in kinds {
        let _ = write!(text, " {} {:+.0}", k.name(), d / 1024.0);
    }
    text.push_str("; largest changes:");
    for (d, m) in changes.iter().take(6) {
        let _ = write!(
            text,
            " {:+} kB in {} of {} kB at {:x},",
            d / 1024,
            m.kind.name(),
            m.size / 1024,
            m.start
        );
    }
    text.pop();
    (kinds, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55db021e7000-55db03953000 rw-p 00000000 00:00 0                          [heap]
Size:              23904 kB
Rss:               20544 kB
7f6120000000-7f612022c000 rw-p 00000000 00:00 0 
Size:               2224 kB
Rss:                2000 kB
7f612022c000-7f6124000000 ---p 00000000 00:00 0 
Size:              63312 kB
Rss:                   0 kB
7f6130000000-7f6130001000 ---p 00000000 00:00 0 
Size:                  4 kB
Rss:                   0 kB
7f6130001000-7f6130201000 rw-p 00000000 00:00 0 
Size:               2048 kB
Rss:                  16 kB
7f6138000000-7f6140002000 rw-p 00000000 00:00 0 
Size:             131080 kB
Rss:               89456 kB
7f617fe00000-7f618657d000 r-xp 00000000 08:01 1234                       /usr/lib/libLLVM-15.so.1
Size:             105968 kB
Rss:               46496 kB
";

    #[test]
    fn mappings_are_told_apart() {
        let mut out = Vec::new();
        parse(SMAPS, &mut out);
        let kinds: Vec<Kind> = out.iter().map(|m| m.kind).collect();
        assert_eq!(
            kinds,
            [
                Kind::MainHeap,
                Kind::MallocArena,
                Kind::OtherAnon,
                Kind::OtherAnon,
                Kind::Stack,
                // On a 64 MiB boundary but larger than an arena's heap.
                Kind::OtherAnon,
                Kind::File,
            ]
        );
        assert_eq!(out[0].rss, 20544 * 1024);
        assert_eq!(out[4].rss, 16 * 1024);
    }

    #[test]
    fn the_difference_is_by_kind_and_by_mapping() {
        let mut a = Snapshot::with_capacity(16);
        parse(SMAPS, &mut a.mappings);
        let grown = SMAPS
            .replace("Rss:               20544 kB", "Rss:               20644 kB")
            .replace("Rss:                  16 kB", "Rss:                  24 kB");
        let mut b = Snapshot::with_capacity(16);
        parse(&grown, &mut b.mappings);
        let (kinds, text) = diff(&a, &b);
        assert_eq!(kinds[0], (Kind::MainHeap, 100.0 * 1024.0));
        assert_eq!(kinds[2], (Kind::Stack, 8.0 * 1024.0));
        assert!(kinds[1].1 == 0.0 && kinds[3].1 == 0.0 && kinds[4].1 == 0.0);
        assert!(text.contains("+100 kB in main_heap"), "{text}");
        assert!(text.contains("+8 kB in stacks"), "{text}");
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn the_exact_rss_sees_a_touched_buffer() {
        let mut text = String::new();
        let (before, anon_before) = exact_rss(&mut text).expect("/proc/self/smaps_rollup");
        assert!(anon_before <= before);
        let mut touched = vec![0u8; 64 << 20];
        for page in touched.chunks_mut(4096) {
            page[0] = 1;
        }
        let (after, anon_after) = exact_rss(&mut text).unwrap();
        std::hint::black_box(&touched);
        // To the page: other threads of the test binary allocate too.
        assert!(after >= before + (60 << 20), "{before} -> {after}");
        assert!(anon_after >= anon_before + (60 << 20));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn this_process_can_be_read() {
        let mut s = Snapshot::with_capacity(1024);
        let mut text = String::new();
        assert!(s.take(&mut text, 0, 0.0), "/proc/self/smaps");
        // The test binary's own code is a mapped file, and it has a stack.
        let k = s.by_kind();
        assert!(k[4] > 0, "{k:?}");
        assert!(k[2] > 0, "{k:?}");
    }
}
