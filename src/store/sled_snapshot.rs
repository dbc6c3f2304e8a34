//! A sled catalog's snapshot as one file: what `floe backup` fetches from a serving sled store,
//! and what `floe restore` builds a new data directory's store from.
//!
//! The file is `FLOE-SLED-SNAPSHOT 1\n`, then every collection sled exports (its kind, its name
//! and its entries, each a list of byte strings), each byte string as a little-endian `u32`
//! length and the bytes, and last the SHA-256 of everything before it. A file that is cut short,
//! changed or of another format is refused whole: nothing is imported from it.

use sha2::{Digest, Sha256};

use super::{StoreError, StoreResult};

const MAGIC: &[u8] = b"FLOE-SLED-SNAPSHOT 1\n";
/// Marks another entry of a collection; `END` ends the collection.
const ENTRY: u8 = 1;
const END: u8 = 0;

/// One exported collection: its kind, its name, its entries.
pub type Collection = (Vec<u8>, Vec<u8>, Vec<Vec<Vec<u8>>>);

fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// The snapshot file of `collections`.
pub fn encode(collections: impl IntoIterator<Item = Collection>) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    for (kind, name, entries) in collections {
        out.push(ENTRY);
        put(&mut out, &kind);
        put(&mut out, &name);
        for entry in entries {
            out.push(ENTRY);
            out.extend_from_slice(&(entry.len() as u32).to_le_bytes());
            for field in entry {
                put(&mut out, &field);
            }
        }
        out.push(END);
    }
    out.push(END);
    let digest = Sha256::digest(&out);
    out.extend_from_slice(&digest);
    out
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> StoreResult<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.bytes.len());
        let end = end.ok_or_else(|| bad("it ends too early"))?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn u8(&mut self) -> StoreResult<u8> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> StoreResult<usize> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    fn bytes(&mut self) -> StoreResult<Vec<u8>> {
        let n = self.u32()?;
        Ok(self.take(n)?.to_vec())
    }
}

fn bad(why: &str) -> StoreError {
    StoreError::failure(format!("not a usable Floe snapshot: {why}"))
}

/// The collections of a snapshot file, once its checksum and every length check out.
pub fn decode(file: &[u8]) -> StoreResult<Vec<Collection>> {
    if file.len() < MAGIC.len() + 32 || !file.starts_with(MAGIC) {
        return Err(bad("it does not start as one"));
    }
    let (body, digest) = file.split_at(file.len() - 32);
    if Sha256::digest(body)[..] != *digest {
        return Err(bad("its checksum does not match (cut short or changed)"));
    }
    let mut r = Reader {
        bytes: body,
        at: MAGIC.len(),
    };
    let mut collections = Vec::new();
    while r.u8()? == ENTRY {
        let (kind, name) = (r.bytes()?, r.bytes()?);
        let mut entries = Vec::new();
        while r.u8()? == ENTRY {
            let fields = r.u32()?;
            let mut entry = Vec::with_capacity(fields.min(16));
            for _ in 0..fields {
                entry.push(r.bytes()?);
            }
            entries.push(entry);
        }
        if kind != b"tree" || entries.iter().any(|e| e.len() != 2) {
            return Err(bad(
                "it holds a collection that is not a tree of keys and values",
            ));
        }
        collections.push((kind, name, entries));
    }
    if r.at != body.len() {
        return Err(bad("it has bytes after its end"));
    }
    Ok(collections)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_reads_back_and_a_damaged_one_is_refused() {
        let collections: Vec<Collection> = vec![
            (
                b"tree".to_vec(),
                b"tabulars".to_vec(),
                vec![vec![b"k".to_vec(), b"v".to_vec()]],
            ),
            (b"tree".to_vec(), b"empty".to_vec(), vec![]),
        ];
        let file = encode(collections.clone());
        assert_eq!(decode(&file).unwrap(), collections);
        let mut changed = file.clone();
        changed[MAGIC.len() + 6] ^= 1;
        assert!(decode(&changed).is_err());
        assert!(decode(&file[..file.len() - 1]).is_err());
        assert!(decode(b"something else entirely, longer than a checksum....").is_err());
    }
}
