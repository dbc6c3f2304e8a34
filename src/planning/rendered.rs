//! Plan answers already rendered, kept so that a plan asked again (a dashboard's query, a client
//! retrying) is answered without pruning or rendering anything. An answer is kept by everything
//! it depends on: the table (its UUID), the snapshot, the current schema and format version, and
//! the request; all of them are immutable once set, so a kept answer is never stale. Answers
//! that hold plan tasks are not kept (their tokens are bound to one principal).
//!
//! Owns: the rendered answers and their byte bound. Must not touch: how a plan is computed.

use bytes::Bytes;

/// A rendered answer: its `delete-files` and `file-scan-tasks` arrays.
#[derive(Clone)]
pub struct Rendered {
    pub delete_files: Option<Bytes>,
    pub file_scan_tasks: Bytes,
}

/// Rendered answers by what they depend on, within a byte bound.
pub struct RenderedPlans {
    answers: moka::sync::Cache<String, Rendered, foldhash::fast::RandomState>,
}

impl RenderedPlans {
    /// At most about `bytes` of answers (each weighed by its arrays and its key).
    pub fn new(bytes: u64) -> Self {
        Self {
            answers: moka::sync::Cache::builder()
                .max_capacity(bytes)
                .weigher(|key: &String, r: &Rendered| {
                    let bytes = key.len()
                        + r.file_scan_tasks.len()
                        + r.delete_files.as_ref().map_or(0, Bytes::len)
                        + 128;
                    u32::try_from(bytes).unwrap_or(u32::MAX)
                })
                .build_with_hasher(foldhash::fast::RandomState::default()),
        }
    }

    /// The answer kept under `key`.
    pub fn get(&self, key: &str) -> Option<Rendered> {
        let found = self.answers.get(key);
        if found.is_some() {
            metrics::counter!("floe_plan_answers_reused_total").increment(1);
        }
        found
    }

    /// Keeps `answer` under `key` (and evicts at once what no longer fits: moka applies inserts
    /// in batches, which would hold memory past the bound meanwhile).
    pub fn keep(&self, key: String, answer: Rendered) {
        self.answers.insert(key, answer);
        self.answers.run_pending_tasks();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_kept_by_its_key_within_the_bound() {
        let kept = RenderedPlans::new(10_000);
        let answer = |n: usize| Rendered {
            delete_files: None,
            file_scan_tasks: Bytes::from(vec![b' '; n]),
        };
        kept.keep("a".into(), answer(100));
        assert_eq!(kept.get("a").unwrap().file_scan_tasks.len(), 100);
        assert!(kept.get("b").is_none());
        // Larger than the bound: not kept.
        kept.keep("big".into(), answer(20_000));
        kept.answers.run_pending_tasks();
        assert!(kept.get("big").is_none());
    }
}
