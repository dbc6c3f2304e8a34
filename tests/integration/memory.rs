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
    let mut worst = (f64::MAX, f64::MIN);
    for (shape, json) in shapes {
        let (cached, occupied) =
            occupied(|| CachedTable::parse("s3://warehouse/m.json", json.as_bytes()).unwrap());
        let weight = cached.weight() as usize;
        let ratio = weight as f64 / occupied as f64;
        println!(
            "{shape}: JSON {} B, occupies {occupied} B, weighed {weight} B ({ratio:.2}x)",
            json.len()
        );
        worst = (worst.0.min(ratio), worst.1.max(ratio));
        drop(cached);
    }
    println!(
        "weight / occupancy between {:.2} and {:.2}",
        worst.0, worst.1
    );
    // Never lighter than it is (the cache would outgrow its bound), at most half again heavier
    // (the cache would hold fewer files than it could).
    assert!(worst.0 >= 1.0 && worst.1 <= 1.5, "{worst:?}");
}
