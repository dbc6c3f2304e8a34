//! The metadata cache weighs each entry by what it really occupies. This binary's allocator counts
//! every thread's live bytes and allocations, so a test can measure what parsing one file leaves
//! behind, and check the weight against it for the shapes metadata files come in.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use floe::catalog::metadata::CachedTable;

/// The system allocator, counting the calling thread's live bytes and allocations.
struct Counting;

thread_local! {
    static LIVE: Cell<(isize, isize)> = const { Cell::new((0, 0)) };
}

fn count(bytes: isize, allocations: isize) {
    let _ = LIVE.try_with(|live| {
        let (b, a) = live.get();
        live.set((b + bytes, a + allocations));
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize, 1);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize), -1);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize, 0);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// What `work`'s result occupies while it lives: its bytes plus the allocator's header and
/// rounding (16 bytes an allocation, as glibc's malloc spends).
fn occupied<T>(work: impl FnOnce() -> T) -> (T, usize) {
    let before = LIVE.with(Cell::get);
    let value = work();
    let after = LIVE.with(Cell::get);
    let bytes = (after.0 - before.0) + 16 * (after.1 - before.1);
    (value, bytes.max(0) as usize)
}

/// A format-version 2 table metadata file: `fields` columns (every fifth a struct of `nested`
/// fields), `snapshots` appends with the summaries engines write, `properties` properties.
fn metadata_json(fields: usize, nested: usize, snapshots: usize, properties: usize) -> String {
    metadata_json_with_log(fields, nested, snapshots, properties, 0)
}

/// The same, with `log` entries of earlier metadata files (engines keep up to 100).
fn metadata_json_with_log(
    fields: usize,
    nested: usize,
    snapshots: usize,
    properties: usize,
    log: usize,
) -> String {
    let mut id = 0;
    let mut columns = Vec::new();
    for c in 0..fields {
        id += 1;
        let me = id;
        if c % 5 == 4 && nested > 0 {
            let inner: Vec<String> = (0..nested)
                .map(|n| {
                    id += 1;
                    format!(r#"{{"id":{id},"name":"inner_{n}","required":false,"type":"string"}}"#)
                })
                .collect();
            columns.push(format!(
                r#"{{"id":{me},"name":"column_{c}","required":false,"type":{{"type":"struct","fields":[{}]}}}}"#,
                inner.join(",")
            ));
        } else {
            columns.push(format!(
                r#"{{"id":{me},"name":"column_{c}","required":false,"type":"long","doc":"the {c}th measure"}}"#
            ));
        }
    }
    let snaps: Vec<String> = (1..=snapshots)
        .map(|s| {
            let parent = if s > 1 { format!(r#""parent-snapshot-id":{},"#, s - 1) } else { String::new() };
            format!(
                r#"{{"snapshot-id":{s},{parent}"sequence-number":{s},"timestamp-ms":{},"manifest-list":"s3://warehouse/sales/orders/metadata/snap-{s}-1-0b9c4e2a-5d7f-4c3e-9a51-3f0e6d2b8c71.avro","summary":{{"operation":"append","added-data-files":"1","added-records":"1000","added-files-size":"20480","changed-partition-count":"1","total-records":"{}","total-files-size":"{}","total-data-files":"{s}","total-delete-files":"0","total-position-deletes":"0","total-equality-deletes":"0"}},"schema-id":0}}"#,
                1_700_000_000_000u64 + s as u64,
                1000 * s,
                20480 * s
            )
        })
        .collect();
    let metadata_log: Vec<String> = (0..log)
        .map(|v| format!(r#"{{"metadata-file":"s3://warehouse/sales/orders/metadata/{v:05}-2f4e1c8a-6b3d-4e7f-9a01-5c2d8e7b3f46.metadata.json","timestamp-ms":{}}}"#, 1_600_000_000_000u64 + v as u64))
        .collect();
    let log: Vec<String> = (1..=snapshots)
        .map(|s| {
            format!(
                r#"{{"snapshot-id":{s},"timestamp-ms":{}}}"#,
                1_700_000_000_000u64 + s as u64
            )
        })
        .collect();
    let props: Vec<String> = (0..properties)
        .map(|p| format!(r#""property.number.{p}":"value {p}""#))
        .collect();
    let current = if snapshots > 0 {
        format!(
            r#""current-snapshot-id":{snapshots},"refs":{{"main":{{"snapshot-id":{snapshots},"type":"branch"}}}},"#
        )
    } else {
        String::new()
    };
    format!(
        r#"{{"format-version":2,"table-uuid":"9c12d441-03fe-4693-9a96-a0705ddf69c1","location":"s3://warehouse/sales/orders","last-sequence-number":{snapshots},"last-updated-ms":1800000000000,"last-column-id":{id},"current-schema-id":0,"schemas":[{{"type":"struct","schema-id":0,"fields":[{}]}}],"default-spec-id":0,"partition-specs":[{{"spec-id":0,"fields":[]}}],"last-partition-id":999,"default-sort-order-id":0,"sort-orders":[{{"order-id":0,"fields":[]}}],"properties":{{{}}},{current}"snapshots":[{}],"snapshot-log":[{}],"metadata-log":[{}]}}"#,
        columns.join(","),
        props.join(","),
        snaps.join(","),
        log.join(","),
        metadata_log.join(",")
    )
}

#[test]
fn a_cached_metadata_file_weighs_what_it_occupies() {
    let shapes = [
        ("new table, 5 columns", metadata_json(5, 0, 0, 2)),
        (
            "typical, 20 columns, 10 appends",
            metadata_json(20, 0, 10, 5),
        ),
        ("wide, 500 columns", metadata_json(500, 0, 1, 5)),
        (
            "nested, 50 columns of which 10 structs of 20",
            metadata_json(50, 20, 3, 5),
        ),
        (
            "long, 10 columns, 1,000 appends",
            metadata_json(10, 0, 1000, 5),
        ),
        ("many properties", metadata_json(10, 0, 5, 300)),
        (
            "100 commits kept in the metadata log",
            metadata_json_with_log(10, 0, 100, 5, 100),
        ),
    ];
    assert_weighed(shapes.iter().map(|(shape, json)| {
        (*shape, json.len(), move || {
            let cached = CachedTable::parse("s3://warehouse/m.json", json.as_bytes()).unwrap();
            let weight = cached.weight();
            (cached, weight)
        })
    }));
}

/// Parses each shape (its name, its file's size, the parse returning the value and its weight;
/// the parse borrows the file, so that nothing it frees is counted against the value)
/// and checks that the weight is never lighter than what the value occupies (the cache would
/// outgrow its bound) and at most half again heavier (it would hold fewer files than it could).
fn assert_weighed<T, F: FnOnce() -> (T, u32)>(
    shapes: impl IntoIterator<Item = (&'static str, usize, F)>,
) {
    let mut worst = (f64::MAX, f64::MIN);
    for (shape, size, parse) in shapes {
        let ((value, weight), occupied) = occupied(parse);
        let ratio = f64::from(weight) / occupied as f64;
        println!("{shape}: file {size} B, occupies {occupied} B, weighed {weight} B ({ratio:.2}x)");
        worst = (worst.0.min(ratio), worst.1.max(ratio));
        drop(value);
    }
    println!(
        "weight / occupancy between {:.2} and {:.2}",
        worst.0, worst.1
    );
    assert!(worst.0 >= 1.0 && worst.1 <= 1.5, "{worst:?}");
}

/// A manifest of `files` data files of a table of `columns` long columns (partitioned by the
/// first when `partitioned`), each file with every column's metrics and bounds, as engines write
/// them; its Avro bytes and the manifest list's entry for it.
async fn manifest_avro(
    files: usize,
    columns: usize,
    partitioned: bool,
) -> (Vec<u8>, iceberg::spec::ManifestFile) {
    use iceberg::spec::{
        DataContentType, DataFileBuilder, DataFileFormat, Datum, Literal, ManifestWriterBuilder,
        NestedField, PartitionSpec, PrimitiveType, Schema, Struct, Transform, Type,
    };
    use std::collections::HashMap;
    let schema = Schema::builder()
        .with_fields((1..=columns as i32).map(|id| {
            NestedField::optional(
                id,
                format!("column_{id}"),
                Type::Primitive(PrimitiveType::Long),
            )
            .into()
        }))
        .build()
        .unwrap();
    let schema = std::sync::Arc::new(schema);
    let mut spec = PartitionSpec::builder(schema.clone()).with_spec_id(0);
    if partitioned {
        spec = spec
            .add_partition_field("column_1", "column_1", Transform::Identity)
            .unwrap();
    }
    let spec = spec.build().unwrap();
    let io = iceberg::io::FileIO::new_with_memory();
    let location = "memory:///warehouse/t/metadata/m.avro";
    let output = io.new_output(location).unwrap();
    let mut writer =
        ManifestWriterBuilder::new(output, Some(1), schema.clone(), spec.clone()).build_v2_data();
    let ids = 1..=columns as i32;
    for i in 0..files {
        let partition = if partitioned {
            Struct::from_iter([Some(Literal::long(i as i64 % 10))])
        } else {
            Struct::empty()
        };
        let counts: HashMap<i32, u64> = ids.clone().map(|id| (id, 1000 + i as u64)).collect();
        let file = DataFileBuilder::default()
            .content(DataContentType::Data)
            .file_path(format!(
                "s3://warehouse/t/data/column_1={}/00000-{i}-5b6c7e1f-3a2d-4c8e-9f10-{i:012}.parquet",
                i % 10
            ))
            .file_format(DataFileFormat::Parquet)
            .partition(partition)
            .partition_spec_id(0)
            .record_count(1000)
            .file_size_in_bytes(1 << 20)
            .column_sizes(counts.clone())
            .value_counts(counts.clone())
            .null_value_counts(ids.clone().map(|id| (id, 0)).collect())
            .lower_bounds(ids.clone().map(|id| (id, Datum::long(i as i64))).collect())
            .upper_bounds(ids.clone().map(|id| (id, Datum::long(i as i64 + 999))).collect())
            .split_offsets(Some(vec![4]))
            .build()
            .unwrap();
        writer.add_file(file, 1).unwrap();
    }
    let entry = writer.write_manifest_file().await.unwrap();
    let bytes = io.new_input(location).unwrap().read().await.unwrap();
    (bytes.to_vec(), entry)
}

#[tokio::test]
async fn a_cached_manifest_weighs_what_it_occupies() {
    let shapes = [
        ("one file, 5 columns", manifest_avro(1, 5, false).await),
        ("100 files, 5 columns", manifest_avro(100, 5, true).await),
        ("1,000 files, 3 columns", manifest_avro(1000, 3, true).await),
        ("200 files, 50 columns", manifest_avro(200, 50, false).await),
        ("20 files, 300 columns", manifest_avro(20, 300, true).await),
    ];
    assert_weighed(shapes.iter().map(|(shape, (avro, entry))| {
        (*shape, avro.len(), move || {
            floe::planning::manifests::parsed_manifest(avro, entry).unwrap()
        })
    }));
}

/// A manifest list of `manifests` manifests of a table partitioned by one column.
async fn manifest_list_avro(manifests: usize) -> Vec<u8> {
    let (_, entry) = manifest_avro(10, 3, true).await;
    let io = iceberg::io::FileIO::new_with_memory();
    let location = "memory:///warehouse/t/metadata/snap-1-1-5b6c7e1f.avro";
    let output = io.new_output(location).unwrap().writer().await.unwrap();
    let mut list = iceberg::spec::ManifestListWriter::v2(output, 1, None, 1);
    list.add_manifests((0..manifests).map(|i| iceberg::spec::ManifestFile {
        manifest_path: format!("s3://warehouse/t/metadata/5b6c7e1f-3a2d-4c8e-9f10-{i:012}-m0.avro"),
        ..entry.clone()
    }))
    .unwrap();
    list.close().await.unwrap();
    io.new_input(location)
        .unwrap()
        .read()
        .await
        .unwrap()
        .to_vec()
}

#[tokio::test]
async fn a_cached_manifest_list_weighs_what_it_occupies() {
    let shapes = [
        ("one manifest", manifest_list_avro(1).await),
        ("100 manifests", manifest_list_avro(100).await),
        ("1,000 manifests", manifest_list_avro(1000).await),
    ];
    assert_weighed(shapes.iter().map(|(shape, avro)| {
        (*shape, avro.len(), move || {
            floe::planning::manifests::parsed_list(avro, iceberg::spec::FormatVersion::V2).unwrap()
        })
    }));
}
