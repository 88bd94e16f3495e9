//! What the kernel knows about a process: resident memory and CPU time, read from `/proc`.

use std::collections::BTreeMap;

/// Clock ticks per second of `/proc/<pid>/stat` times (`getconf CLK_TCK`; 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// `VmRSS` and `VmHWM` (peak resident set) of a live process, in bytes.
pub fn memory(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|line| line.starts_with(name))?;
        let kib: u64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// CPU seconds a process or thread has used, in user and in system (kernel) mode, and how
/// often its threads were switched out.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cpu {
    /// User-mode seconds.
    pub user: f64,
    /// Kernel-mode seconds (syscalls, network stack, page faults).
    pub system: f64,
    /// Context switches, voluntary (blocking, waiting) and involuntary, of all threads.
    pub switches: u64,
}

impl Cpu {
    /// User plus system.
    pub fn total(self) -> f64 {
        self.user + self.system
    }
}

impl std::ops::Sub for Cpu {
    type Output = Cpu;
    fn sub(self, other: Cpu) -> Cpu {
        Cpu {
            user: self.user - other.user,
            system: self.system - other.system,
            switches: self.switches.saturating_sub(other.switches),
        }
    }
}

/// The name and CPU time of a process or thread, from a `stat` file.
fn stat_cpu(path: &str) -> Option<(String, Cpu)> {
    let stat = std::fs::read_to_string(path).ok()?;
    // `pid (comm) state …`: comm may hold spaces and parentheses, so split at the last ')'.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_owned();
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    // After the comm: state is field 3 of the man page, utime 14 and stime 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let cpu = Cpu {
        user: utime / TICKS_PER_SECOND,
        system: stime / TICKS_PER_SECOND,
        switches: 0,
    };
    Some((comm, cpu))
}

/// CPU time a process has used so far, and its context switches (all its threads).
pub fn cpu(pid: u32) -> Option<Cpu> {
    let (_, mut cpu) = stat_cpu(&format!("/proc/{pid}/stat"))?;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
            cpu.switches += status
                .lines()
                .filter(|line| line.contains("ctxt_switches:"))
                .filter_map(|line| line.split(':').nth(1)?.trim().parse::<u64>().ok())
                .sum::<u64>();
        }
    }
    Some(cpu)
}

/// CPU seconds per thread group of a live process: threads are grouped by name with digits
/// removed (`rdk:broker1` and `rdk:broker2` are `rdk:broker`).
pub fn thread_cpu_seconds(pid: u32) -> BTreeMap<String, f64> {
    let mut groups = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return groups;
    };
    for task in tasks.flatten() {
        let path = format!("{}/stat", task.path().display());
        if let Some((comm, cpu)) = stat_cpu(&path) {
            let name: String = comm.chars().filter(|c| !c.is_ascii_digit()).collect();
            *groups
                .entry(name.trim_end_matches(['-', '_', '#']).to_owned())
                .or_insert(0.0) += cpu.total();
        }
    }
    groups
}

/// The pid of a running process whose command line contains every one of `needles`.
pub fn find_process(needles: &[&str]) -> Option<u32> {
    let me = std::process::id();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if needles.iter().all(|needle| cmdline.contains(needle)) {
            return Some(pid);
        }
    }
    None
}

/// `MemAvailable` of the machine, in bytes.
pub fn memory_available() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo
        .lines()
        .find(|line| line.starts_with("MemAvailable:"))?;
    let kib: u64 = line["MemAvailable:".len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Waits until the machine is quiet — less than `busy_cores` of its cores busy over one
/// second — or `longest` passed. Returns the busy cores of the last second.
pub async fn settle(busy_cores: f64, longest: std::time::Duration) -> f64 {
    let deadline = std::time::Instant::now() + longest;
    loop {
        let before = machine_busy_seconds().unwrap_or(0.0);
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let busy = machine_busy_seconds().unwrap_or(0.0) - before;
        if busy < busy_cores || std::time::Instant::now() >= deadline {
            return busy;
        }
    }
}

/// CPU seconds the whole machine spent busy (not idle, not waiting for I/O) since boot, all
/// cores together, from `/proc/stat`.
pub fn machine_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let ticks: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal guest guest_nice; guest time is already
    // counted in user.
    let total: f64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3)? + ticks.get(4)?;
    Some((total - idle) / TICKS_PER_SECOND)
}

/// CPU seconds used by processes during a phase: each tracked process's time at the last
/// sample minus its time when tracking began; and the whole machine's busy time, so load from
/// anything else running at the same time shows.
#[derive(Debug)]
pub struct CpuWatch {
    tracked: BTreeMap<String, (u32, Cpu, Cpu)>,
    machine: (f64, f64),
}

impl Default for CpuWatch {
    fn default() -> Self {
        let now = machine_busy_seconds().unwrap_or(0.0);
        CpuWatch {
            tracked: BTreeMap::new(),
            machine: (now, now),
        }
    }
}

impl CpuWatch {
    /// Busy CPU seconds of the whole machine (all cores) since the watch began.
    pub fn machine_busy(&self) -> f64 {
        self.machine.1 - self.machine.0
    }

    /// Starts counting `pid` under `label` from its current CPU time (`from_zero`: from 0,
    /// for a process that started with the phase).
    pub fn track(&mut self, label: &str, pid: u32, from_zero: bool) {
        if self.tracked.contains_key(label) {
            return;
        }
        let now = cpu(pid).unwrap_or_default();
        let start = if from_zero { Cpu::default() } else { now };
        self.tracked.insert(label.to_owned(), (pid, start, now));
    }

    /// Whether `label` is tracked.
    pub fn tracks(&self, label: &str) -> bool {
        self.tracked.contains_key(label)
    }

    /// Reads every tracked process's CPU time again (a process that exited keeps its last).
    pub fn sample(&mut self) {
        if let Some(now) = machine_busy_seconds() {
            self.machine.1 = now;
        }
        for (pid, _, last) in self.tracked.values_mut() {
            if let Some(now) = cpu(*pid) {
                *last = now;
            }
        }
    }

    /// `(label, CPU time during the phase)`.
    pub fn report(&self) -> Vec<(String, Cpu)> {
        self.tracked
            .iter()
            .map(|(label, (_, start, last))| (label.clone(), *last - *start))
            .collect()
    }
}
