//! The Diffie-Hellman workers: threads that run the IKE engine's DH jobs
//! (`ike::endpoint::DhJob`), so that a burst of connecting clients costs the packet thread only
//! bookkeeping, and the engine's rate limit (`max_dh_per_second`) bounds what they are given.
//!
//! Each worker has its own job channel and gets jobs in turn (they cost the same within a
//! group, and nothing is shared but the channels); results come back over one tokio channel
//! that the packet loop selects on. Nothing here touches packets.

use ike::endpoint::{DhDone, DhJob};
use std::sync::mpsc;
use std::thread::JoinHandle;
use tokio::sync::mpsc as tokio_mpsc;

/// The worker threads and both ends of their channels.
pub(super) struct DhWorkers {
    /// One queue per worker, fed in turn.
    jobs: Vec<mpsc::Sender<DhJob>>,
    next: usize,
    done: tokio_mpsc::UnboundedReceiver<DhDone>,
    threads: Vec<JoinHandle<()>>,
}

impl DhWorkers {
    /// Starts `threads` workers (0: one per CPU core). Call it after dropping privileges:
    /// threads started later inherit the dropped credentials.
    ///
    /// # Errors
    /// When a thread cannot be started.
    pub(super) fn start(threads: usize) -> std::io::Result<Self> {
        let threads = match threads {
            0 => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            n => n,
        };
        let (results, done) = tokio_mpsc::unbounded_channel();
        let mut jobs = Vec::with_capacity(threads);
        let mut handles = Vec::with_capacity(threads);
        for i in 0..threads {
            let (tx, queue) = mpsc::channel::<DhJob>();
            let results = results.clone();
            handles.push(
                std::thread::Builder::new()
                    .name(format!("l2sec-dh{i}"))
                    .spawn(move || work(&queue, &results))?,
            );
            jobs.push(tx);
        }
        tracing::debug!(threads, "Diffie-Hellman workers started");
        Ok(Self {
            jobs,
            next: 0,
            done,
            threads: handles,
        })
    }

    /// Hands a job to the next worker in turn.
    pub(super) fn submit(&mut self, job: DhJob) {
        let Some(worker) = self.jobs.get(self.next % self.jobs.len().max(1)) else {
            return;
        };
        self.next = self.next.wrapping_add(1);
        if worker.send(job).is_err() {
            tracing::error!("a Diffie-Hellman worker is gone: its exchange will time out");
        }
    }

    /// The next finished job.
    pub(super) async fn recv(&mut self) -> Option<DhDone> {
        self.done.recv().await
    }

    /// A finished job, if one is waiting.
    pub(super) fn try_recv(&mut self) -> Option<DhDone> {
        self.done.try_recv().ok()
    }
}

impl Drop for DhWorkers {
    /// Closes the queues and waits for the workers to finish the jobs they hold.
    fn drop(&mut self) {
        self.jobs.clear();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn work(queue: &mpsc::Receiver<DhJob>, results: &tokio_mpsc::UnboundedSender<DhDone>) {
    while let Ok(job) = queue.recv() {
        if results.send(job.run()).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ike::crypto::{DhGroup, DhKeyPair};
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[tokio::test]
    async fn every_job_comes_back_once_and_the_workers_stop_when_dropped() {
        let mut workers = DhWorkers::start(3).unwrap();
        assert_eq!(workers.threads.len(), 3);
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        for _ in 0..12 {
            workers.submit(DhJob::Generate(DhKeyPair::draw(
                DhGroup::Modp1024,
                &mut rng,
            )));
        }
        let mut publics = std::collections::BTreeSet::new();
        for _ in 0..12 {
            match workers.recv().await {
                Some(DhDone::Generated { group, result }) => {
                    assert_eq!(group, DhGroup::Modp1024);
                    publics.insert(result.unwrap().public_value().to_vec());
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(publics.len(), 12, "twelve different key pairs");
        assert!(workers.try_recv().is_none());
        let names: Vec<_> = workers
            .threads
            .iter()
            .map(|t| t.thread().name().map(str::to_owned))
            .collect();
        assert!(
            names
                .iter()
                .all(|n| n.as_deref().is_some_and(|n| n.starts_with("l2sec-dh")))
        );
        drop(workers);
    }

    #[tokio::test]
    async fn a_key_pair_comes_back_to_the_exchange_that_waits_for_it() {
        use ike::endpoint::KeyPairTarget;
        let mut workers = DhWorkers::start(2).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let cookies = (ike::wire::Cookie([1; 8]), ike::wire::Cookie([2; 8]));
        let targets = [
            KeyPairTarget::MainMode(cookies),
            KeyPairTarget::QuickMode {
                cookies,
                message_id: 7,
            },
        ];
        for target in targets {
            workers.submit(DhJob::KeyPairFor {
                target,
                drawn: DhKeyPair::draw(DhGroup::Modp1024, &mut rng),
            });
        }
        let mut back = Vec::new();
        for _ in targets {
            match workers.recv().await {
                Some(DhDone::KeyPairFor { target, result }) => {
                    assert_eq!(result.unwrap().group(), DhGroup::Modp1024);
                    back.push(target);
                }
                other => panic!("{other:?}"),
            }
        }
        back.sort_by_key(|t| matches!(t, KeyPairTarget::QuickMode { .. }));
        assert_eq!(back, targets);
    }
}
