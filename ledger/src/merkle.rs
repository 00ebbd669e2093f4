//! An RFC 6962 (RFC 9162 §2.1) Merkle tree over the log, so that one record's inclusion in a
//! signed checkpoint, and one checkpoint's extension by a later one, can be proven with a
//! logarithmic number of hashes instead of the whole log.
//!
//! Leaf `i` (0-based) is the record at position `i + 1`; its leaf hash is
//! `SHA-256(0x00 || record hash)`, an inner node `SHA-256(0x01 || left || right)`. A tree of `n`
//! leaves splits at the largest power of two below `n`, as in RFC 6962.
//!
//! Proof construction reads node hashes through a callback for perfect subtrees
//! (`level`, `index`: the leaves `index * 2^level .. (index + 1) * 2^level`), so the hashes can
//! come from memory in tests and from a table in query-api.

use sha2::{Digest, Sha256};

use crate::log::Hash;

/// The hash of a leaf: the record's chain hash, domain-separated.
pub fn leaf_hash(record_hash: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0u8]);
    hasher.update(record_hash);
    hasher.finalize().into()
}

/// The hash of an inner node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([1u8]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The root of an empty tree: the hash of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly below `n` (`n >= 2`).
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// The right edge of a tree grown one leaf at a time: the roots of its perfect subtrees, largest
/// first. Constant-size state (at most 64 hashes) gives the root at any size in one pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// `(level, hash)` of each perfect subtree on the right edge, largest (leftmost) first.
    peaks: Vec<(u32, Hash)>,
}

impl Frontier {
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf (its leaf hash). Returns the perfect subtrees it completed, smallest first,
    /// as `(level, index, hash)`: what a store of node hashes needs to add.
    pub fn push(&mut self, leaf: Hash) -> Vec<(u32, u64, Hash)> {
        let mut completed = Vec::new();
        self.push_with(leaf, |level, index, hash| completed.push((level, index, hash)));
        completed
    }

    /// Appends a leaf when only the root is wanted (a verifier's millions of leaves allocate
    /// nothing).
    pub fn append(&mut self, leaf: Hash) {
        self.push_with(leaf, |_, _, _| {});
    }

    /// Appends a leaf, telling `completed` each perfect subtree it completes, smallest first.
    fn push_with(&mut self, leaf: Hash, mut completed: impl FnMut(u32, u64, Hash)) {
        completed(0, self.size, leaf);
        let mut current = (0u32, leaf);
        while let Some(&(level, left)) = self.peaks.last() {
            if level != current.0 {
                break;
            }
            self.peaks.pop();
            current = (level + 1, node_hash(&left, &current.1));
            completed(current.0, self.size >> current.0, current.1);
        }
        self.peaks.push(current);
        self.size += 1;
    }

    /// The frontier of a tree of `size` leaves from its peaks (largest first), as [`Self::peaks`]
    /// gives them; `None` when their number does not fit the size.
    pub fn from_peaks(size: u64, peaks: &[Hash]) -> Option<Self> {
        let levels: Vec<u32> = (0..64).rev().filter(|level| size >> level & 1 == 1).collect();
        (levels.len() == peaks.len()).then(|| Self {
            size,
            peaks: levels.into_iter().zip(peaks.iter().copied()).collect(),
        })
    }

    /// The roots of the perfect subtrees on the right edge, largest first.
    pub fn peaks(&self) -> Vec<Hash> {
        self.peaks.iter().map(|(_, hash)| *hash).collect()
    }

    /// The tree's root at its current size.
    pub fn root(&self) -> Hash {
        let mut peaks = self.peaks.iter().rev();
        let Some(&(_, mut root)) = peaks.next() else {
            return empty_root();
        };
        for (_, left) in peaks {
            root = node_hash(left, &root);
        }
        root
    }
}

/// The root over `leaves` (leaf hashes), straight from the definition. For tests and small trees.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n as u64) as usize;
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// Node hashes of perfect subtrees: `(level, index) -> hash`.
pub trait Nodes {
    fn node(&self, level: u32, index: u64) -> Option<Hash>;
}

/// The root of leaves `start .. end`, which RFC 6962's recursion only ever asks for with `start`
/// aligned to the largest power of two below `end - start`.
fn subtree(nodes: &dyn Nodes, start: u64, end: u64) -> Option<Hash> {
    let width = end - start;
    if width.is_power_of_two() {
        let level = width.trailing_zeros();
        return nodes.node(level, start >> level);
    }
    let k = split(width);
    Some(node_hash(
        &subtree(nodes, start, start + k)?,
        &subtree(nodes, start + k, end)?,
    ))
}

/// The root of a tree of `size` leaves from stored node hashes.
pub fn root_at(nodes: &dyn Nodes, size: u64) -> Option<Hash> {
    if size == 0 {
        Some(empty_root())
    } else {
        subtree(nodes, 0, size)
    }
}

/// The audit path of leaf `index` in the tree of `size` leaves (RFC 6962 `PATH`).
pub fn inclusion_proof(nodes: &dyn Nodes, index: u64, size: u64) -> Option<Vec<Hash>> {
    if index >= size {
        return None;
    }
    let mut proof = Vec::new();
    path(nodes, index, 0, size, &mut proof)?;
    Some(proof)
}

fn path(nodes: &dyn Nodes, index: u64, start: u64, end: u64, proof: &mut Vec<Hash>) -> Option<()> {
    if end - start == 1 {
        return Some(());
    }
    let k = split(end - start);
    if index - start < k {
        path(nodes, index, start, start + k, proof)?;
        proof.push(subtree(nodes, start + k, end)?);
    } else {
        path(nodes, index, start + k, end, proof)?;
        proof.push(subtree(nodes, start, start + k)?);
    }
    Some(())
}

/// The proof that the tree of `old` leaves is a prefix of the tree of `new` (RFC 6962 `PROOF`).
pub fn consistency_proof(nodes: &dyn Nodes, old: u64, new: u64) -> Option<Vec<Hash>> {
    if old == 0 || old > new {
        return None;
    }
    let mut proof = Vec::new();
    if old < new {
        subproof(nodes, old, 0, new, true, &mut proof)?;
    }
    Some(proof)
}

fn subproof(nodes: &dyn Nodes, m: u64, start: u64, end: u64, whole: bool, proof: &mut Vec<Hash>) -> Option<()> {
    let n = end - start;
    if m == n {
        if !whole {
            proof.push(subtree(nodes, start, end)?);
        }
        return Some(());
    }
    let k = split(n);
    if m <= k {
        subproof(nodes, m, start, start + k, whole, proof)?;
        proof.push(subtree(nodes, start + k, end)?);
    } else {
        subproof(nodes, m - k, start + k, end, false, proof)?;
        proof.push(subtree(nodes, start, start + k)?);
    }
    Some(())
}

/// Whether `proof` shows the leaf `leaf` at `index` in the tree of `size` leaves with `root`
/// (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == *root
}

/// Whether `proof` shows that the tree of `old` leaves with `old_root` is a prefix of the tree
/// of `new` leaves with `new_root` (RFC 9162 §2.1.4.2).
pub fn verify_consistency(old: u64, new: u64, old_root: &Hash, new_root: &Hash, proof: &[Hash]) -> bool {
    if old == 0 || old > new {
        return false;
    }
    if old == new {
        return proof.is_empty() && old_root == new_root;
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let (mut f, mut s) = (old - 1, new - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && fr == *old_root && sr == *new_root
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Every perfect subtree of `leaves`, as a frontier pushed leaf by leaf reports them.
    struct Memory(HashMap<(u32, u64), Hash>);

    impl Nodes for Memory {
        fn node(&self, level: u32, index: u64) -> Option<Hash> {
            self.0.get(&(level, index)).copied()
        }
    }

    fn tree(n: u64) -> (Vec<Hash>, Memory, Vec<Hash>) {
        let mut frontier = Frontier::default();
        let mut nodes = HashMap::new();
        let mut leaves = Vec::new();
        let mut roots = vec![frontier.root()];
        for i in 0..n {
            let leaf = leaf_hash(&[i as u8; 32]);
            leaves.push(leaf);
            for (level, index, hash) in frontier.push(leaf) {
                nodes.insert((level, index), hash);
            }
            roots.push(frontier.root());
        }
        (leaves, Memory(nodes), roots)
    }

    #[test]
    fn the_frontier_and_the_stored_nodes_give_the_defined_root_at_every_size() {
        let (leaves, nodes, roots) = tree(70);
        for size in 0..=70usize {
            assert_eq!(roots[size], root(&leaves[..size]), "frontier, size {size}");
            assert_eq!(root_at(&nodes, size as u64), Some(roots[size]), "nodes, size {size}");
        }
    }

    #[test]
    fn appending_grows_the_same_tree_as_pushing() {
        let (leaves, _, roots) = tree(70);
        let mut appended = Frontier::default();
        for (size, leaf) in leaves.into_iter().enumerate() {
            appended.append(leaf);
            assert_eq!(appended.root(), roots[size + 1], "size {}", size + 1);
        }
    }

    #[test]
    fn a_frontier_resumes_from_its_peaks() {
        let mut frontier = Frontier::default();
        for i in 0..13u8 {
            frontier.push(leaf_hash(&[i; 32]));
        }
        let mut resumed = Frontier::from_peaks(13, &frontier.peaks()).unwrap();
        assert_eq!(resumed, frontier);
        assert_eq!(Frontier::from_peaks(12, &frontier.peaks()), None);
        resumed.push(leaf_hash(&[13; 32]));
        frontier.push(leaf_hash(&[13; 32]));
        assert_eq!(resumed.root(), frontier.root());
    }

    #[test]
    fn inclusion_proofs_verify_and_fail_when_anything_changes() {
        let (leaves, nodes, roots) = tree(40);
        for size in 1..=40u64 {
            for index in 0..size {
                let proof = inclusion_proof(&nodes, index, size).unwrap();
                let root = &roots[size as usize];
                assert!(
                    verify_inclusion(&leaves[index as usize], index, size, &proof, root),
                    "{index}/{size}"
                );
                let other = leaves[((index + 1) % 40) as usize];
                assert!(!verify_inclusion(&other, index, size, &proof, root), "{index}/{size}");
                if let Some(first) = proof.first() {
                    let mut bent = proof.clone();
                    bent[0] = node_hash(first, first);
                    assert!(!verify_inclusion(&leaves[index as usize], index, size, &bent, root));
                }
            }
        }
    }

    #[test]
    fn consistency_proofs_verify_and_fail_when_anything_changes() {
        let (_, nodes, roots) = tree(40);
        for new in 1..=40u64 {
            for old in 1..=new {
                let proof = consistency_proof(&nodes, old, new).unwrap();
                let (old_root, new_root) = (&roots[old as usize], &roots[new as usize]);
                assert!(
                    verify_consistency(old, new, old_root, new_root, &proof),
                    "{old} -> {new}"
                );
                if old < new {
                    assert!(
                        !verify_consistency(old, new, new_root, new_root, &proof),
                        "{old} -> {new}"
                    );
                    assert!(
                        !verify_consistency(old, new, old_root, old_root, &proof),
                        "{old} -> {new}"
                    );
                }
            }
        }
    }
}
