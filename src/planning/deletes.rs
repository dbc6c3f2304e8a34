//! Which delete files a data file needs, by the spec's rules:
//! - a deletion vector (a Puffin position delete) applies to the one data file it names, when its
//!   data sequence number is at least the data file's; where one applies, position delete files
//!   for that data file are not needed;
//! - a position delete file applies to data files of its partition (or the one it names in
//!   `referenced-data-file`) with a data sequence number at most its own;
//! - an equality delete file applies to data files with a lower data sequence number, in its
//!   partition, or in every partition when its spec is unpartitioned.

use std::collections::HashMap;
use std::sync::Arc;

use iceberg::spec::{DataContentType, DataFileFormat, ManifestEntry, Struct, StructType};

/// A live delete file found while planning, with where it applies.
#[derive(Clone)]
pub struct DeleteFile {
    pub entry: Arc<ManifestEntry>,
    pub spec_id: i32,
    /// Its spec's partition type (as its manifest records it), to render its partition.
    pub partition_type: Arc<StructType>,
}

impl DeleteFile {
    fn sequence(&self) -> i64 {
        self.entry.sequence_number.unwrap_or(0)
    }
}

/// The delete files of a scan, indexed for lookup per data file.
#[derive(Default)]
pub struct DeleteIndex {
    files: Vec<DeleteFile>,
    vectors: HashMap<String, Vec<usize>>,
    positions_by_file: HashMap<String, Vec<usize>>,
    positions_by_partition: HashMap<(i32, Struct), Vec<usize>>,
    equality_global: Vec<usize>,
    equality_by_partition: HashMap<(i32, Struct), Vec<usize>>,
}

impl DeleteIndex {
    /// Adds a live delete file of spec `spec_id` (`unpartitioned`: that spec has no fields).
    pub fn add(
        &mut self,
        entry: Arc<ManifestEntry>,
        spec_id: i32,
        partition_type: Arc<StructType>,
        unpartitioned: bool,
    ) {
        let at = self.files.len();
        let file = &entry.data_file;
        let key = || (spec_id, file.partition().clone());
        match file.content_type() {
            DataContentType::PositionDeletes => match file.referenced_data_file() {
                Some(data) if file.file_format() == DataFileFormat::Puffin => {
                    self.vectors.entry(data).or_default().push(at)
                }
                Some(data) => self.positions_by_file.entry(data).or_default().push(at),
                None => self
                    .positions_by_partition
                    .entry(key())
                    .or_default()
                    .push(at),
            },
            DataContentType::EqualityDeletes if unpartitioned => self.equality_global.push(at),
            DataContentType::EqualityDeletes => self
                .equality_by_partition
                .entry(key())
                .or_default()
                .push(at),
            DataContentType::Data => return,
        }
        self.files.push(DeleteFile {
            entry,
            spec_id,
            partition_type,
        });
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The delete files a data file of spec `spec_id` needs (positions in this index).
    pub fn for_data_file(&self, data: &ManifestEntry, spec_id: i32) -> Vec<usize> {
        if self.files.is_empty() {
            return Vec::new();
        }
        let path = data.data_file.file_path();
        let seq = data.sequence_number.unwrap_or(0);
        let key = (spec_id, data.data_file.partition().clone());
        let at_least = |ids: Option<&Vec<usize>>| -> Vec<usize> {
            ids.into_iter()
                .flatten()
                .copied()
                .filter(|i| self.files[*i].sequence() >= seq)
                .collect()
        };
        let mut needed = Vec::new();
        // The newest deletion vector replaces position delete files for this data file.
        let vector = at_least(self.vectors.get(path))
            .into_iter()
            .max_by_key(|i| self.files[*i].sequence());
        match vector {
            Some(v) => needed.push(v),
            None => {
                needed.extend(at_least(self.positions_by_file.get(path)));
                needed.extend(at_least(self.positions_by_partition.get(&key)));
            }
        }
        let newer = |ids: &[usize]| {
            ids.iter()
                .copied()
                .filter(|i| self.files[*i].sequence() > seq)
                .collect::<Vec<_>>()
        };
        needed.extend(newer(&self.equality_global));
        if let Some(ids) = self.equality_by_partition.get(&key) {
            needed.extend(newer(ids));
        }
        needed
    }

    pub fn file(&self, at: usize) -> &DeleteFile {
        &self.files[at]
    }
}

#[cfg(test)]
mod tests {
    use iceberg::spec::{DataFileBuilder, Literal, ManifestStatus};

    use super::*;

    fn entry(
        content: DataContentType,
        path: &str,
        city: Option<&str>,
        seq: i64,
        format: DataFileFormat,
        referenced: Option<&str>,
    ) -> Arc<ManifestEntry> {
        let partition = match city {
            Some(c) => Struct::from_iter([Some(Literal::string(c))]),
            None => Struct::empty(),
        };
        let mut file = DataFileBuilder::default();
        file.content(content)
            .file_path(path.to_owned())
            .file_format(format)
            .file_size_in_bytes(10)
            .record_count(1)
            .partition(partition)
            .partition_spec_id(0);
        if let Some(r) = referenced {
            file.referenced_data_file(Some(r.to_owned()));
        }
        Arc::new(
            ManifestEntry::builder()
                .status(ManifestStatus::Added)
                .sequence_number(seq)
                .data_file(file.build().unwrap())
                .build(),
        )
    }

    fn data(path: &str, city: &str, seq: i64) -> Arc<ManifestEntry> {
        entry(
            DataContentType::Data,
            path,
            Some(city),
            seq,
            DataFileFormat::Parquet,
            None,
        )
    }

    fn paths(index: &DeleteIndex, needed: Vec<usize>) -> Vec<String> {
        let mut out: Vec<String> = needed
            .into_iter()
            .map(|i| index.file(i).entry.data_file.file_path().to_owned())
            .collect();
        out.sort();
        out
    }

    fn no_type() -> Arc<StructType> {
        Arc::new(StructType::new(vec![]))
    }

    #[test]
    fn position_and_equality_deletes_apply_by_partition_and_sequence() {
        let mut index = DeleteIndex::default();
        let pos = |p, c, s| {
            entry(
                DataContentType::PositionDeletes,
                p,
                Some(c),
                s,
                DataFileFormat::Parquet,
                None,
            )
        };
        let eq = |p, c: Option<&str>, s| {
            entry(
                DataContentType::EqualityDeletes,
                p,
                c,
                s,
                DataFileFormat::Parquet,
                None,
            )
        };
        index.add(pos("pos-oslo-3", "oslo", 3), 0, no_type(), false);
        index.add(pos("pos-rome-3", "rome", 3), 0, no_type(), false);
        index.add(eq("eq-oslo-3", Some("oslo"), 3), 0, no_type(), false);
        index.add(eq("eq-global-5", None, 5), 1, no_type(), true);
        // Same sequence number: position deletes apply, equality deletes do not.
        let older = data("oslo-3", "oslo", 3);
        assert_eq!(
            paths(&index, index.for_data_file(&older, 0)),
            ["eq-global-5", "pos-oslo-3"]
        );
        let oldest = data("oslo-1", "oslo", 1);
        assert_eq!(
            paths(&index, index.for_data_file(&oldest, 0)),
            ["eq-global-5", "eq-oslo-3", "pos-oslo-3"]
        );
        // Written after the deletes: none of them.
        assert!(
            index
                .for_data_file(&data("oslo-6", "oslo", 6), 0)
                .is_empty()
        );
        // Another partition, or another spec with the same partition value.
        assert_eq!(
            paths(&index, index.for_data_file(&data("lima-1", "lima", 1), 0)),
            ["eq-global-5"]
        );
        assert_eq!(
            paths(&index, index.for_data_file(&oldest, 7)),
            ["eq-global-5"]
        );
    }

    #[test]
    fn a_deletion_vector_applies_to_its_file_alone_and_replaces_position_files() {
        let mut index = DeleteIndex::default();
        let dv = |p, target, s| {
            entry(
                DataContentType::PositionDeletes,
                p,
                Some("oslo"),
                s,
                DataFileFormat::Puffin,
                Some(target),
            )
        };
        index.add(
            entry(
                DataContentType::PositionDeletes,
                "pos-oslo-2",
                Some("oslo"),
                2,
                DataFileFormat::Parquet,
                None,
            ),
            0,
            no_type(),
            false,
        );
        index.add(dv("dv-a-3", "a", 3), 0, no_type(), false);
        index.add(dv("dv-a-4", "a", 4), 0, no_type(), false);
        index.add(
            entry(
                DataContentType::PositionDeletes,
                "pos-b-2",
                Some("oslo"),
                2,
                DataFileFormat::Parquet,
                Some("b"),
            ),
            0,
            no_type(),
            false,
        );
        assert_eq!(
            paths(&index, index.for_data_file(&data("a", "oslo", 1), 0)),
            ["dv-a-4"]
        );
        assert_eq!(
            paths(&index, index.for_data_file(&data("b", "oslo", 1), 0)),
            ["pos-b-2", "pos-oslo-2"]
        );
        assert_eq!(
            paths(&index, index.for_data_file(&data("c", "oslo", 1), 0)),
            ["pos-oslo-2"]
        );
        assert!(
            index.for_data_file(&data("a", "oslo", 5), 0).is_empty(),
            "written after the vectors"
        );
    }
}
