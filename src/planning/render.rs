//! Content files as the REST spec's JSON, as Iceberg Java's parsers read them: the partition as
//! an array in spec-field order with each value in its type's single-value JSON, metrics as
//! `{"keys":[..],"values":[..]}`, bounds and key metadata as upper-case hex of their binary form.

use std::collections::{BTreeMap, HashMap};

use iceberg::spec::{DataContentType, DataFile, Datum, ManifestEntry, StructType};
use serde_json::{Map, Value, json};

/// Which columns' metrics a task carries (`stats-fields`); none when not asked.
pub type StatsFields = Option<Vec<i32>>;

fn content(kind: DataContentType) -> &'static str {
    match kind {
        DataContentType::Data => "data",
        DataContentType::PositionDeletes => "position-deletes",
        DataContentType::EqualityDeletes => "equality-deletes",
    }
}

/// The partition tuple as an array in spec-field order.
fn partition(file: &DataFile, partition_type: &StructType) -> Value {
    let values = file
        .partition()
        .fields()
        .iter()
        .zip(partition_type.fields())
        .map(|(value, field)| match value {
            Some(v) => v
                .clone()
                .try_into_json(&field.field_type)
                .unwrap_or(Value::Null),
            None => Value::Null,
        })
        .collect();
    Value::Array(values)
}

fn counts(map: &HashMap<i32, u64>, wanted: &[i32]) -> Option<Value> {
    let picked: BTreeMap<i32, u64> = map
        .iter()
        .filter(|(id, _)| wanted.contains(id))
        .map(|(id, v)| (*id, *v))
        .collect();
    (!picked.is_empty()).then(|| {
        json!({"keys": picked.keys().collect::<Vec<_>>(), "values": picked.values().collect::<Vec<_>>()})
    })
}

fn bounds(map: &HashMap<i32, Datum>, wanted: &[i32]) -> Option<Value> {
    let picked: BTreeMap<i32, String> = map
        .iter()
        .filter(|(id, _)| wanted.contains(id))
        .filter_map(|(id, d)| Some((*id, hex::encode_upper(d.to_bytes().ok()?))))
        .collect();
    (!picked.is_empty()).then(|| {
        json!({"keys": picked.keys().collect::<Vec<_>>(), "values": picked.values().collect::<Vec<_>>()})
    })
}

/// A data or delete file of spec `spec_id`.
pub fn content_file(
    entry: &ManifestEntry,
    spec_id: i32,
    partition_type: &StructType,
    stats: &StatsFields,
) -> Value {
    let f = &entry.data_file;
    let mut out = Map::new();
    out.insert("spec-id".into(), spec_id.into());
    out.insert("content".into(), content(f.content_type()).into());
    out.insert("file-path".into(), f.file_path().into());
    out.insert(
        "file-format".into(),
        f.file_format().to_string().to_lowercase().into(),
    );
    out.insert("partition".into(), partition(f, partition_type));
    out.insert("file-size-in-bytes".into(), f.file_size_in_bytes().into());
    out.insert("record-count".into(), f.record_count().into());
    if let Some(key) = f.key_metadata() {
        out.insert("key-metadata".into(), hex::encode_upper(key).into());
    }
    if let Some(offsets) = f.split_offsets().filter(|o| !o.is_empty()) {
        out.insert("split-offsets".into(), offsets.into());
    }
    if let Some(order) = f.sort_order_id() {
        out.insert("sort-order-id".into(), order.into());
    }
    match f.content_type() {
        DataContentType::Data => {
            if let Some(first) = f.first_row_id() {
                out.insert("first-row-id".into(), first.into());
            }
            if let Some(wanted) = stats {
                let maps = [
                    ("column-sizes", counts(f.column_sizes(), wanted)),
                    ("value-counts", counts(f.value_counts(), wanted)),
                    ("null-value-counts", counts(f.null_value_counts(), wanted)),
                    ("nan-value-counts", counts(f.nan_value_counts(), wanted)),
                    ("lower-bounds", bounds(f.lower_bounds(), wanted)),
                    ("upper-bounds", bounds(f.upper_bounds(), wanted)),
                ];
                for (key, value) in maps {
                    if let Some(v) = value {
                        out.insert(key.into(), v);
                    }
                }
            }
        }
        DataContentType::PositionDeletes => {
            if let Some(data) = f.referenced_data_file() {
                out.insert("referenced-data-file".into(), data.into());
            }
            if let (Some(offset), Some(size)) = (f.content_offset(), f.content_size_in_bytes()) {
                out.insert("content-offset".into(), offset.into());
                out.insert("content-size-in-bytes".into(), size.into());
            }
        }
        DataContentType::EqualityDeletes => {
            out.insert(
                "equality-ids".into(),
                f.equality_ids().unwrap_or_default().into(),
            );
        }
    }
    Value::Object(out)
}
