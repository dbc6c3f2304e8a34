//! Table and view records decoded once per stored version, so a warm load-table decodes no JSON.
//!
//! Owns: the decoded form of the records read from the `tabulars` tree, by key, beside the bytes
//! they were decoded from. Must not touch: what is stored (every read still reads sled; nothing
//! here decides what a read returns).
//!
//! A read always takes the current bytes from sled and answers from memory only when they are
//! the very bytes the remembered record was decoded from, so it returns exactly what decoding
//! those bytes would: no write needs to tell this cache anything, and no write can leave it
//! stale. It is bounded in bytes and forgets least used records first.

use ::sled::IVec;

use super::{StoreResult, TabularRecord, decode};

/// The bytes a record was decoded from, and the record.
type Decoded = std::sync::Arc<(IVec, TabularRecord)>;

/// About what one remembered record holds besides its bytes (the key, the record's strings).
const ENTRY_OVERHEAD: u32 = 256;

/// Records decoded from the `tabulars` tree.
pub struct DecodedTabulars {
    by_key: moka::sync::Cache<IVec, Decoded, foldhash::fast::RandomState>,
}

impl DecodedTabulars {
    /// Remembers about `bytes` of records.
    pub fn new(bytes: u64) -> Self {
        Self {
            by_key: moka::sync::Cache::builder()
                .max_capacity(bytes)
                .weigher(|key: &IVec, decoded: &Decoded| {
                    let raw = key.len() + decoded.0.len() * 2;
                    u32::try_from(raw).unwrap_or(u32::MAX) + ENTRY_OVERHEAD
                })
                .build_with_hasher(foldhash::fast::RandomState::default()),
        }
    }

    /// The record stored as `raw` under `key`: remembered when `raw` is what it was decoded
    /// from, decoded (and remembered) otherwise.
    pub fn record(&self, key: &[u8], raw: IVec) -> StoreResult<TabularRecord> {
        if let Some(known) = self.by_key.get(key)
            && known.0 == raw
        {
            return Ok(known.1.clone());
        }
        let record: TabularRecord = decode(&raw)?;
        self.by_key
            .insert(IVec::from(key), std::sync::Arc::new((raw, record.clone())));
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{NamespaceIdent, ObjectName, TableIdent, TabularId};
    use crate::store::TabularKind;

    fn record(metadata_location: &str) -> TabularRecord {
        TabularRecord {
            id: TabularId::new_v4(),
            kind: TabularKind::Table,
            ident: TableIdent::new(
                NamespaceIdent::new(vec!["ns".into()]).unwrap(),
                ObjectName::new("t".to_owned()).unwrap(),
            ),
            location: "file:///w/ns/t".into(),
            metadata_location: metadata_location.into(),
            created_at_ms: 1,
        }
    }

    fn stored(record: &TabularRecord) -> IVec {
        IVec::from(serde_json::to_vec(record).unwrap())
    }

    /// Whatever was remembered, a read answers what the bytes it is given say: a record
    /// rewritten under the same key (a commit) is the new one at once.
    #[test]
    fn a_read_answers_the_stored_bytes_never_a_remembered_older_record() {
        let decoded = DecodedTabulars::new(1 << 20);
        let (first, second) = (
            record("file:///w/ns/t/metadata/1.json"),
            record("file:///w/ns/t/metadata/2.json"),
        );
        assert_eq!(decoded.record(b"k", stored(&first)).unwrap(), first);
        assert_eq!(decoded.record(b"k", stored(&first)).unwrap(), first);
        assert_eq!(decoded.record(b"k", stored(&second)).unwrap(), second);
        assert_eq!(decoded.record(b"k", stored(&first)).unwrap(), first);
        assert_eq!(decoded.record(b"other", stored(&second)).unwrap(), second);
    }

    /// Bytes that are not a record are an error, not a remembered answer.
    #[test]
    fn damaged_bytes_are_an_error() {
        let decoded = DecodedTabulars::new(1 << 20);
        decoded
            .record(b"k", stored(&record("file:///m/1.json")))
            .unwrap();
        assert!(decoded.record(b"k", IVec::from(&b"{not json"[..])).is_err());
    }
}
