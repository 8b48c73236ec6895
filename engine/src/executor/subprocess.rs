//! The `subprocess` executor: each node in its own local `judgeflow exec-node` process, its
//! output appended to the node's log. A process that crashes (abort, segfault, the OOM killer,
//! a CUDA fault) ends that node only; the driver reports how it ended.

use std::process::{Command, Stdio};
use std::sync::Mutex;

use super::{Executor, Job, JobSpec, JobState, TASK_ENV, worker_command};
use crate::error::{Error, Result};

pub(super) struct Subprocess;

impl Executor for Subprocess {
    fn submit(&self, job: &JobSpec<'_>) -> Result<Job> {
        let (program, args) = worker_command(job.task)?;
        let log = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(job.log)
            .map_err(|e| Error::io("cannot open the node's log", job.log, e))?;
        let err = log
            .try_clone()
            .map_err(|e| Error::io("cannot open the node's log", job.log, e))?;
        let child = Command::new(&program)
            .args(&args)
            .env(TASK_ENV, job.task)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| Error::io("cannot start the worker", &program, e))?;
        Ok(Job {
            id: format!("pid {}", child.id()),
            child: Some(Mutex::new(child)),
            status: None,
        })
    }

    fn poll(&self, job: &Job) -> Result<JobState> {
        let child = job.child.as_ref().expect("a subprocess job has its child");
        let mut child = child.lock().expect("poisoned only by a panic");
        match child.try_wait() {
            Ok(None) => Ok(JobState::Running),
            Ok(Some(status)) => Ok(JobState::Ended {
                detail: describe(status),
            }),
            Err(e) => Err(Error::usage(
                format!("cannot wait for the worker ({}): {e}", job.id),
                None,
            )),
        }
    }

    fn cancel(&self, job: &Job) {
        if let Some(child) = &job.child
            && let Ok(mut child) = child.lock()
        {
            let _ = child.kill();
        }
    }
}

/// "exited with status 3", "was killed by signal 6 (SIGABRT)".
fn describe(status: std::process::ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return format!("was killed by signal {sig} ({})", signal_name(sig));
        }
    }
    match status.code() {
        Some(code) => format!("exited with status {code}"),
        None => format!("ended ({status})"),
    }
}

pub(super) fn signal_name(sig: i32) -> &'static str {
    match sig {
        1 => "SIGHUP",
        2 => "SIGINT",
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        _ => "signal",
    }
}
