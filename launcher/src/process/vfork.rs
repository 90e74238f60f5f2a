//! Starting a program the way `posix_spawn` does: `clone(CLONE_VM | CLONE_VFORK)`, the child
//! running on a stack of its own inside the launcher's memory until it executes the program.
//! With `fork`, the kernel copies the launcher's page tables for every agent and the launcher
//! then takes a copy-on-write fault for every page it touches, which dominated starting many
//! agents (docs/architecture.md). `posix_spawn` itself cannot be used: it cannot set the
//! parent-death signal or the descriptor limit an agent starts with.
//!
//! The child shares the launcher's memory with threads that keep running (the store's writer,
//! the sampler), so between clone and exec it only reads what the parent prepared and makes
//! system calls: no allocation, no lock, no Rust runtime.

use nix::libc;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Everything the child needs, prepared by the parent.
pub struct Plan<'a> {
    /// The file to execute (already looked up in `PATH`).
    pub program: CString,
    pub argv: Vec<CString>,
    /// What `/bin/sh` is given when the program is a script without `#!` (`ENOEXEC`), as
    /// `execvp` does: the program's path, then the arguments.
    pub shell_argv: Vec<CString>,
    pub envp: Vec<CString>,
    pub cwd: CString,
    /// The descriptors the child gets as 0, 1, 2 and 3.
    pub fds: [BorrowedFd<'a>; 4],
    /// The descriptor limit (soft, hard) the child gets, if not the launcher's.
    pub fd_limit: Option<(u64, u64)>,
    /// A `cgroup.procs` file open for writing: the child moves itself into that cgroup.
    pub cgroup: Option<BorrowedFd<'a>>,
}

/// What the child reads: raw pointers into the parent's prepared data.
struct ChildArgs {
    program: *const libc::c_char,
    argv: *const *const libc::c_char,
    shell_argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    cwd: *const libc::c_char,
    fds: [RawFd; 4],
    fd_limit: Option<libc::rlimit>,
    /// `cgroup.procs` of the cgroup to join, or -1.
    cgroup: RawFd,
    launcher: libc::pid_t,
    /// Write end of a close-on-exec pipe: the child writes its errno there if it cannot exec.
    report: RawFd,
}

/// The child's stack. It runs a handful of system calls before exec.
const STACK_BYTES: usize = 64 * 1024;

/// Starts the program; returns its pid once it has executed (or the reason it could not).
/// The child is in a process group of its own, gets SIGKILL when the launcher dies, has its
/// signal handlers reset and nothing blocked.
#[allow(unsafe_code)]
pub fn spawn(plan: &Plan<'_>) -> io::Result<i32> {
    // Sources are moved above the targets first, so that placing one cannot overwrite another.
    let fds = plan.fds.map(|fd| nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(10)));
    let fds: Vec<OwnedFd> = fds
        .into_iter()
        // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor that nothing else owns.
        .map(|r| r.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }))
        .collect::<Result<_, _>>()?;
    let (report_read, report_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let pointers = |list: &[CString]| -> Vec<*const libc::c_char> {
        list.iter().map(|a| a.as_ptr()).chain(std::iter::once(std::ptr::null())).collect()
    };
    let (argv, shell_argv, envp) = (pointers(&plan.argv), pointers(&plan.shell_argv), pointers(&plan.envp));
    let args = ChildArgs {
        program: plan.program.as_ptr(),
        argv: argv.as_ptr(),
        shell_argv: shell_argv.as_ptr(),
        envp: envp.as_ptr(),
        cwd: plan.cwd.as_ptr(),
        fds: [fds[0].as_raw_fd(), fds[1].as_raw_fd(), fds[2].as_raw_fd(), fds[3].as_raw_fd()],
        fd_limit: plan.fd_limit.map(|(soft, hard)| libc::rlimit { rlim_cur: soft, rlim_max: hard }),
        cgroup: plan.cgroup.map_or(-1, |fd| fd.as_raw_fd()),
        launcher: std::process::id() as libc::pid_t,
        report: report_write.as_raw_fd(),
    };
    let mut stack = vec![0u8; STACK_BYTES];
    // SAFETY: the stack top is inside the allocation (one past its end, as clone expects for
    // a downward-growing stack), aligned down to 16 bytes; the allocation outlives the child's
    // use of it, since with CLONE_VFORK clone returns only once the child has executed or
    // exited. All signals are blocked around clone so that no handler of the launcher's runs
    // in the child before it has reset them; the parent restores its mask, the child empties
    // its own just before exec.
    let pid = unsafe {
        let top = stack.as_mut_ptr().add(STACK_BYTES);
        let top = (top as usize & !15) as *mut libc::c_void;
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let pid = libc::clone(
            child_main,
            top,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            &args as *const ChildArgs as *mut libc::c_void,
        );
        let clone_error = io::Error::last_os_error();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        if pid < 0 {
            return Err(clone_error);
        }
        pid
    };
    drop(report_write);
    drop(fds);
    let mut errno = [0u8; 4];
    let n = nix::unistd::read(&report_read, &mut errno).unwrap_or(0);
    if n == errno.len() {
        let mut status = 0;
        // SAFETY: reaps the child that just failed before exec; it has exited.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        return Err(io::Error::from_raw_os_error(i32::from_ne_bytes(errno)));
    }
    Ok(pid)
}

/// The child, between clone and exec: system calls only.
#[allow(unsafe_code)]
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` points at the parent's ChildArgs, alive and unchanged while the parent
    // waits for this child to exec or exit (CLONE_VFORK). Everything below is a system call
    // on data prepared by the parent.
    unsafe {
        let a = &*(arg as *const ChildArgs);
        let fail = |report: RawFd| -> ! {
            let errno = *libc::__errno_location();
            let bytes = errno.to_ne_bytes();
            libc::write(report, bytes.as_ptr().cast(), bytes.len());
            libc::_exit(127)
        };
        // Handlers are the launcher's code: reset them (this child has its own copy of the
        // table); SIGPIPE, which Rust ignores, goes back to its default too.
        for sig in 1..=libc::SIGRTMAX() {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) == 0
                && (old.sa_sigaction != libc::SIG_IGN || sig == libc::SIGPIPE)
                && old.sa_sigaction != libc::SIG_DFL
            {
                let mut dfl: libc::sigaction = std::mem::zeroed();
                dfl.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(sig, &dfl, std::ptr::null_mut());
            }
        }
        // First, so that nothing it starts is ever outside the cgroup ("0": the writer).
        if a.cgroup >= 0 && libc::write(a.cgroup, c"0".as_ptr().cast(), 1) != 1 {
            fail(a.report);
        }
        if libc::setpgid(0, 0) != 0 {
            fail(a.report);
        }
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
            fail(a.report);
        }
        // The launcher may have died before prctl: then no signal will come.
        if libc::getppid() != a.launcher {
            libc::_exit(127);
        }
        for (target, source) in a.fds.iter().enumerate() {
            if libc::dup2(*source, target as RawFd) < 0 {
                fail(a.report);
            }
        }
        if let Some(limit) = &a.fd_limit
            && libc::setrlimit(libc::RLIMIT_NOFILE, limit) != 0
        {
            fail(a.report);
        }
        if libc::chdir(a.cwd) != 0 {
            fail(a.report);
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        libc::execve(a.program, a.argv, a.envp);
        let errno = libc::__errno_location();
        if *errno == libc::ENOEXEC {
            libc::execve(c"/bin/sh".as_ptr(), a.shell_argv, a.envp);
            *errno = libc::ENOEXEC;
        }
        fail(a.report)
    }
}
