//! When checks run: one queue per provider, so a provider sees one request at a time with at
//! least the pacing interval between two, while up to `concurrency` providers are checked at
//! once. A 429 backs off for the rest of the run: the provider's remaining credentials are not
//! sent and are reported as errors that quote the 429, so a rate limit is never met with more
//! requests (and a big image with hundreds of tokens of one provider cannot hammer it).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Job, Verification, VerifyOptions, VerifyStatus, check, http, now_utc};

/// Runs every job and returns their outcomes in job order.
pub(super) fn run(
    jobs: &[Job],
    client: &http::SafeClient,
    opts: &VerifyOptions,
) -> Vec<Verification> {
    // Queues by provider, in the order providers first appear.
    let mut queues: Vec<(&str, Vec<usize>)> = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        match queues.iter_mut().find(|(name, _)| *name == job.provider.name) {
            Some((_, q)) => q.push(i),
            None => queues.push((job.provider.name, vec![i])),
        }
    }
    let next = Mutex::new(0usize);
    let results: Mutex<Vec<Option<Verification>>> = Mutex::new(vec![None; jobs.len()]);
    std::thread::scope(|scope| {
        for _ in 0..opts.concurrency.clamp(1, 16).min(queues.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let q = {
                        let mut n = next.lock().unwrap_or_else(|e| e.into_inner());
                        *n += 1;
                        *n - 1
                    };
                    let Some((_, queue)) = queues.get(q) else { break };
                    for (i, v) in run_queue(jobs, queue, client, opts.pacing) {
                        results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(v);
                    }
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|v| {
            v.unwrap_or_else(|| Verification {
                status: VerifyStatus::Error,
                provider: None,
                identity: None,
                reason: Some("check did not run".into()),
                checked_at: now_utc(),
            })
        })
        .collect()
}

/// One provider's checks, in order, paced; after a 429 the rest are not sent.
fn run_queue(
    jobs: &[Job],
    queue: &[usize],
    client: &http::SafeClient,
    pacing: Duration,
) -> Vec<(usize, Verification)> {
    let mut out = Vec::with_capacity(queue.len());
    let mut last: Option<Instant> = None;
    let mut backoff: Option<String> = None;
    for &i in queue {
        let job = &jobs[i];
        if let Some(why) = &backoff {
            out.push((
                i,
                Verification {
                    status: VerifyStatus::Error,
                    provider: Some(job.provider.name.to_owned()),
                    identity: None,
                    reason: Some(format!(
                        "not sent: backing off from {} for the rest of this run after: {why}",
                        job.provider.name
                    )),
                    checked_at: now_utc(),
                },
            ));
            continue;
        }
        if let Some(t) = last {
            std::thread::sleep(pacing.saturating_sub(t.elapsed()));
        }
        last = Some(Instant::now());
        let (v, rate_limited) = check(job, client);
        if rate_limited {
            backoff = v.reason.clone();
        }
        out.push((i, v));
    }
    out
}
