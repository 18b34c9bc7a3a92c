//! Planning: from the jobs a frame declared to the graph the workers execute.
//!
//! A frame records its *shape* as it declares jobs: each job's name, its explicit
//! dependencies and its resource accesses, in declaration order. Planning turns
//! a shape into a [`Topology`]: every job's predecessor count, its successors in
//! one flat array, the roots, and the job-name groups used for statistics.
//!
//! Resource accesses become edges in declaration order: a reader runs after the
//! last earlier writer of that resource; a writer runs after the last earlier
//! writer and every reader since. Dependencies can only name jobs declared
//! earlier, so a shape is always acyclic.
//!
//! Planning allocates, so topologies are cached by shape: a frame whose shape
//! equals a cached one (same names, same edges, same resources) reuses it and
//! allocates nothing. The cache keeps the most recently used shapes.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use crate::key::Access;

/// The shape of a frame as declared: flat arrays indexed by job number.
#[derive(Default, Clone)]
pub(crate) struct Shape {
    pub(crate) jobs: Vec<ShapeJob>,
    /// Explicit dependencies of all jobs, job after job.
    pub(crate) deps: Vec<u32>,
    /// Resource accesses of all jobs, job after job (the resource key as its
    /// 64-bit ffi value, so a removed-and-recreated resource differs).
    pub(crate) accesses: Vec<(u64, Access)>,
}

/// One declared job in a [`Shape`].
#[derive(Clone, Copy)]
pub(crate) struct ShapeJob {
    pub(crate) name: &'static str,
    /// `deps[previous job's dep_end..dep_end]` are this job's dependencies.
    pub(crate) dep_end: u32,
    /// Likewise for `accesses`.
    pub(crate) acc_end: u32,
}

impl PartialEq for ShapeJob {
    fn eq(&self, other: &Self) -> bool {
        // Names are usually the same literal: compare pointers before bytes.
        let same_name = (self.name.as_ptr() == other.name.as_ptr()
            && self.name.len() == other.name.len())
            || self.name == other.name;
        self.dep_end == other.dep_end && self.acc_end == other.acc_end && same_name
    }
}

impl PartialEq for Shape {
    fn eq(&self, other: &Self) -> bool {
        self.jobs == other.jobs && self.deps == other.deps && self.accesses == other.accesses
    }
}

impl Eq for Shape {}

impl Shape {
    pub(crate) fn clear(&mut self) {
        self.jobs.clear();
        self.deps.clear();
        self.accesses.clear();
    }

    pub(crate) fn len(&self) -> usize {
        self.jobs.len()
    }

    pub(crate) fn name(&self, j: usize) -> &'static str {
        self.jobs[j].name
    }

    pub(crate) fn deps_of(&self, j: usize) -> &[u32] {
        let start = if j == 0 {
            0
        } else {
            self.jobs[j - 1].dep_end as usize
        };
        &self.deps[start..self.jobs[j].dep_end as usize]
    }

    pub(crate) fn accesses_of(&self, j: usize) -> &[(u64, Access)] {
        let start = if j == 0 {
            0
        } else {
            self.jobs[j - 1].acc_end as usize
        };
        &self.accesses[start..self.jobs[j].acc_end as usize]
    }

    /// A hash of everything that makes two shapes different. Names hash by content.
    pub(crate) fn fingerprint(&self) -> u64 {
        let mut h = FxHasher::default();
        self.jobs.len().hash(&mut h);
        for job in &self.jobs {
            job.name.hash(&mut h);
            h.write_u64((job.dep_end as u64) << 32 | job.acc_end as u64);
        }
        self.deps.hash(&mut h);
        for (res, access) in &self.accesses {
            res.hash(&mut h);
            (*access == Access::Write).hash(&mut h);
        }
        h.finish()
    }
}

/// A planned graph: what the executor needs, in flat arrays.
pub(crate) struct Topology {
    pub(crate) shape: Shape,
    fingerprint: u64,
    /// Number of distinct predecessors of each job.
    pub(crate) indegree: Vec<u32>,
    /// `succ[succ_start[j]..succ_start[j + 1]]` are the jobs that wait for `j`.
    pub(crate) succ_start: Vec<u32>,
    pub(crate) succ: Vec<u32>,
    /// Jobs with no predecessor, in declaration order.
    pub(crate) roots: Vec<u32>,
    /// For each job, the index of its name in `group_names`.
    pub(crate) name_group: Vec<u32>,
    pub(crate) group_names: Vec<&'static str>,
    /// The longest chain of jobs, counted in jobs (for tests and stats).
    pub(crate) depth: u32,
    last_used: u64,
}

impl Topology {
    pub(crate) fn successors(&self, j: usize) -> std::ops::Range<usize> {
        self.succ_start[j] as usize..self.succ_start[j + 1] as usize
    }

    /// Plans the graph of `shape`.
    pub(crate) fn plan(shape: &Shape, fingerprint: u64) -> Topology {
        let n = shape.len();
        // Predecessors of each job: explicit ones plus those derived from resources.
        let mut preds: Vec<Vec<u32>> = vec![Vec::new(); n];
        let mut resources: HashMap<u64, (Option<u32>, Vec<u32>)> = HashMap::new();
        for (j, job_preds) in preds.iter_mut().enumerate() {
            let jj = j as u32;
            job_preds.extend_from_slice(shape.deps_of(j));
            let accesses = shape.accesses_of(j);
            for &(res, access) in accesses {
                // A job that both reads and writes a resource counts as a writer.
                let writes = access == Access::Write
                    || accesses
                        .iter()
                        .any(|&(r, a)| r == res && a == Access::Write);
                if access == Access::Read && writes {
                    continue;
                }
                let (last_writer, readers) = resources.entry(res).or_default();
                if let Some(w) = *last_writer {
                    if w != jj {
                        job_preds.push(w);
                    }
                }
                if writes {
                    job_preds.extend(readers.iter().copied().filter(|&r| r != jj));
                    readers.clear();
                    *last_writer = Some(jj);
                } else if readers.last() != Some(&jj) {
                    readers.push(jj);
                }
            }
            job_preds.sort_unstable();
            job_preds.dedup();
        }

        let indegree: Vec<u32> = preds.iter().map(|p| p.len() as u32).collect();
        let mut out_degree = vec![0u32; n];
        for p in preds.iter().flatten() {
            out_degree[*p as usize] += 1;
        }
        let mut succ_start = Vec::with_capacity(n + 1);
        let mut acc = 0u32;
        succ_start.push(0);
        for d in &out_degree {
            acc += d;
            succ_start.push(acc);
        }
        let mut fill: Vec<u32> = succ_start[..n].to_vec();
        let mut succ = vec![0u32; acc as usize];
        for (j, p) in preds.iter().enumerate() {
            for &pred in p {
                succ[fill[pred as usize] as usize] = j as u32;
                fill[pred as usize] += 1;
            }
        }
        let roots = (0..n as u32)
            .filter(|&j| indegree[j as usize] == 0)
            .collect();

        let mut groups: HashMap<&'static str, u32> = HashMap::new();
        let mut group_names = Vec::new();
        let name_group = shape
            .jobs
            .iter()
            .map(|job| job.name)
            .map(|name| {
                *groups.entry(name).or_insert_with(|| {
                    group_names.push(name);
                    (group_names.len() - 1) as u32
                })
            })
            .collect();

        // Longest path, in declaration order (predecessors always come first).
        let mut level = vec![1u32; n];
        for (j, p) in preds.iter().enumerate() {
            level[j] = 1 + p.iter().map(|&q| level[q as usize]).max().unwrap_or(0);
        }
        let depth = level.iter().copied().max().unwrap_or(0);

        Topology {
            shape: shape.clone(),
            fingerprint,
            indegree,
            succ_start,
            succ,
            roots,
            name_group,
            group_names,
            depth,
            last_used: 0,
        }
    }
}

/// The most recently used topologies, looked up by shape.
pub(crate) struct TopologyCache {
    entries: Vec<Topology>,
    capacity: usize,
    clock: u64,
    last_hit: Option<usize>,
}

impl TopologyCache {
    pub(crate) fn new(capacity: usize) -> Self {
        TopologyCache {
            entries: Vec::with_capacity(capacity),
            capacity,
            clock: 0,
            last_hit: None,
        }
    }

    /// The index of the topology for `shape`, planning it if needed. Returns
    /// `(index, reused)`. A hit allocates nothing.
    pub(crate) fn get_or_plan(&mut self, shape: &Shape) -> (usize, bool) {
        self.clock += 1;
        // Most frames repeat the last frame's shape: try it before hashing anything.
        if let Some(i) = self.last_hit {
            if self.entries[i].shape == *shape {
                self.entries[i].last_used = self.clock;
                return (i, true);
            }
        }
        let (i, reused) = self.lookup(shape);
        self.last_hit = Some(i);
        (i, reused)
    }

    fn lookup(&mut self, shape: &Shape) -> (usize, bool) {
        let fingerprint = shape.fingerprint();
        if let Some(i) = self
            .entries
            .iter()
            .position(|t| t.fingerprint == fingerprint && t.shape == *shape)
        {
            self.entries[i].last_used = self.clock;
            return (i, true);
        }
        let mut topology = Topology::plan(shape, fingerprint);
        topology.last_used = self.clock;
        if self.entries.len() < self.capacity {
            self.entries.push(topology);
            (self.entries.len() - 1, false)
        } else {
            let oldest = self
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, t)| t.last_used)
                .map(|(i, _)| i)
                .unwrap_or(0);
            self.entries[oldest] = topology;
            (oldest, false)
        }
    }

    pub(crate) fn get(&self, index: usize) -> &Topology {
        &self.entries[index]
    }
}

/// A small, fast, non-cryptographic hasher (the rustc "Fx" hash): shapes are
/// hashed every frame, and std's SipHash would cost more than the rest of the lookup.
#[derive(Default)]
struct FxHasher {
    hash: u64,
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_u32(&mut self, word: u32) {
        self.write_u64(word as u64);
    }

    fn write_usize(&mut self, word: usize) {
        self.write_u64(word as u64);
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type JobDecl<'a> = (&'static str, &'a [u32], &'a [(u64, Access)]);

    fn shape(jobs: &[JobDecl<'_>]) -> Shape {
        let mut s = Shape::default();
        for (name, deps, accs) in jobs {
            s.deps.extend_from_slice(deps);
            s.accesses.extend_from_slice(accs);
            s.jobs.push(ShapeJob {
                name,
                dep_end: s.deps.len() as u32,
                acc_end: s.accesses.len() as u32,
            });
        }
        s
    }

    fn preds_of(t: &Topology, j: u32) -> Vec<u32> {
        (0..t.shape.len() as u32)
            .filter(|&p| t.succ[t.successors(p as usize)].contains(&j))
            .collect()
    }

    #[test]
    fn resource_order_readers_after_writer_writer_after_readers() {
        use Access::*;
        let t = Topology::plan(
            &shape(&[
                ("w0", &[], &[(7, Write)]),
                ("r1", &[], &[(7, Read)]),
                ("r2", &[], &[(7, Read)]),
                ("w3", &[], &[(7, Write)]),
                ("other", &[], &[(8, Read)]),
                ("rw5", &[], &[(7, Read), (7, Write)]),
            ]),
            0,
        );
        assert_eq!(preds_of(&t, 0), Vec::<u32>::new());
        assert_eq!(preds_of(&t, 1), vec![0]);
        assert_eq!(preds_of(&t, 2), vec![0]);
        assert_eq!(preds_of(&t, 3), vec![0, 1, 2]);
        assert_eq!(preds_of(&t, 4), Vec::<u32>::new());
        assert_eq!(preds_of(&t, 5), vec![3]);
        assert_eq!(t.roots, vec![0, 4]);
        assert_eq!(t.indegree, vec![0, 1, 1, 3, 0, 1]);
        assert_eq!(t.depth, 4);
    }

    #[test]
    fn duplicate_edges_are_merged() {
        use Access::*;
        let t = Topology::plan(
            &shape(&[("a", &[], &[(1, Write)]), ("b", &[0, 0], &[(1, Read)])]),
            0,
        );
        assert_eq!(t.indegree, vec![0, 1]);
        assert_eq!(t.succ, vec![1]);
    }

    #[test]
    fn cache_hits_on_equal_shapes_and_evicts_least_recent() {
        let a = shape(&[("a", &[], &[])]);
        let b = shape(&[("b", &[], &[])]);
        let c = shape(&[("a", &[], &[]), ("a", &[0], &[])]);
        let mut cache = TopologyCache::new(2);
        assert!(!cache.get_or_plan(&a).1);
        assert!(cache.get_or_plan(&a).1);
        assert!(!cache.get_or_plan(&b).1);
        assert!(cache.get_or_plan(&a).1);
        assert!(!cache.get_or_plan(&c).1); // evicts b, the least recently used
        assert!(cache.get_or_plan(&a).1);
        assert!(!cache.get_or_plan(&b).1);
    }

    #[test]
    fn group_names_in_first_declaration_order() {
        let t = Topology::plan(
            &shape(&[("x", &[], &[]), ("y", &[], &[]), ("x", &[], &[])]),
            0,
        );
        assert_eq!(t.group_names, vec!["x", "y"]);
        assert_eq!(t.name_group, vec![0, 1, 0]);
    }
}
