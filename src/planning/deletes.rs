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
