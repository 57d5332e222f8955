//! The hashing threads: hashing runs off the event path, on dedicated threads fed by a bounded
//! queue; results come back to the event loop on a channel it selects on.

use std::{
    fs::File,
    sync::{Arc, Mutex, mpsc},
    thread::JoinHandle,
    time::Instant,
};

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::{
    digest::{Hashed, sha256_file},
    error::Unavailable,
    key::FileKey,
};

/// One file to hash.
#[derive(Debug)]
pub struct Job {
    /// Caller's id of the request.
    pub id: u64,
    /// The open file.
    pub file: File,
    /// Its identity when opened.
    pub key: FileKey,
    /// Size cap.
    pub cap: u64,
    /// When it was queued.
    pub queued: Instant,
}

/// A finished job.
#[derive(Debug)]
pub struct Done {
    /// The job's id.
    pub id: u64,
    /// The file identity the job was given.
    pub key: FileKey,
    /// The hash, or why there is none.
    pub result: Result<Hashed, Unavailable>,
    /// Time spent in the queue, microseconds.
    pub queued_us: u64,
    /// Time spent hashing, microseconds.
    pub took_us: u64,
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// A fixed set of hashing threads behind a bounded queue.
#[derive(Debug)]
pub struct Workers {
    jobs: Option<mpsc::SyncSender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl Workers {
    /// Starts `threads` workers (at least 1) behind a queue of `queue` jobs; finished jobs
    /// arrive on the returned receiver.
    pub fn start(threads: usize, queue: usize) -> std::io::Result<(Self, UnboundedReceiver<Done>)> {
        let (jobs, rx) = mpsc::sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        let (done_tx, done_rx) = unbounded_channel();
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let rx = Arc::clone(&rx);
            let done: UnboundedSender<Done> = done_tx.clone();
            let handle = std::thread::Builder::new()
                .name(format!("hash-{i}"))
                .spawn(move || run(&rx, &done))?;
            handles.push(handle);
        }
        Ok((
            Self {
                jobs: Some(jobs),
                threads: handles,
            },
            done_rx,
        ))
    }

    /// Queues `job`; gives it back when the queue is full (or the workers are gone).
    pub fn submit(&self, job: Job) -> Result<(), Box<Job>> {
        match &self.jobs {
            Some(tx) => tx.try_send(job).map_err(|e| match e {
                mpsc::TrySendError::Full(job) | mpsc::TrySendError::Disconnected(job) => {
                    Box::new(job)
                }
            }),
            None => Err(Box::new(job)),
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        // Closing the queue ends the threads once they finish the job in hand.
        self.jobs = None;
        for handle in self.threads.drain(..) {
            let _ = handle.join();
        }
    }
}

fn run(rx: &Mutex<mpsc::Receiver<Job>>, done: &UnboundedSender<Done>) {
    loop {
        let job = {
            let Ok(rx) = rx.lock() else { return };
            match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let started = Instant::now();
        let Job {
            id,
            mut file,
            key,
            cap,
            queued,
        } = job;
        let result = sha256_file(&mut file, &key, cap);
        let finished = Done {
            id,
            key,
            result,
            queued_us: micros(started.saturating_duration_since(queued)),
            took_us: micros(started.elapsed()),
        };
        if done.send(finished).is_err() {
            return;
        }
    }
}
