//! [`Owner`]: the name a sender claims deliveries under, and whether a claimant is known to be dead.
//!
//! A name is `host/pid/start/nonce`: the process's start time (from `/proc`) tells a live process from a later one
//! that reused its pid, and the nonce tells two sends in one process apart. On the same Linux host a claimant whose
//! process is gone is known dead at once, so a resumed send takes its claims over without waiting for the lease;
//! elsewhere (another host, another OS) its lease has to expire.

/// A sender's claim name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner(String);

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty() && !h.contains('/'))
        .unwrap_or_else(|| "localhost".into())
}

/// Field 22 of `/proc/PID/stat`: the process's start time in clock ticks since boot; none once it has exited,
/// even while it is a zombie that its parent has not reaped yet (it sends nothing more).
fn start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count fields after its ')'.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    // Field 3, the state: Z (zombie) and X (dead) have exited.
    if matches!(fields.next(), Some("Z" | "X")) {
        return None;
    }
    fields.nth(18).map(String::from)
}

impl Owner {
    /// This process, for one send.
    pub fn this_process() -> Owner {
        let pid = std::process::id();
        let mut nonce = [0u8; 6];
        // A failing random source only makes two sends of one process share a name, which is still correct
        // (they are one live process); the claims stay exclusive against every other process.
        let _ = getrandom::fill(&mut nonce);
        Owner(format!(
            "{}/{pid}/{}/{}",
            host(),
            start_time(pid).unwrap_or_else(|| "0".into()),
            hex::encode(nonce)
        ))
    }

    /// The name another process (`pid`, on this host) would claim under, for tests of taking over.
    #[cfg(test)]
    pub(crate) fn for_process(pid: u32) -> Owner {
        Owner(format!(
            "{}/{pid}/{}/test",
            host(),
            start_time(pid).unwrap_or_else(|| "0".into())
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `claimant` (another owner's name) is a process on this host that no longer runs.
    pub fn is_known_dead(claimant: &str) -> bool {
        let mut parts = claimant.split('/');
        let (Some(claimant_host), Some(pid), Some(start)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            return false;
        };
        if claimant_host != host()
            || start == "0"
            || !std::path::Path::new("/proc/self/stat").exists()
        {
            return false;
        }
        start_time(pid).as_deref() != Some(start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_each_send_has_its_own_name() {
        let a = Owner::this_process();
        let b = Owner::this_process();
        assert_ne!(a, b);
        assert!(!Owner::is_known_dead(a.as_str()));
    }

    #[test]
    fn a_process_that_exited_is_known_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let start = start_time(pid);
        child.wait().unwrap();
        let name = format!(
            "{}/{pid}/{}/abc",
            host(),
            start.unwrap_or_else(|| "1".into())
        );
        assert!(Owner::is_known_dead(&name), "{name}");
    }

    #[test]
    fn a_process_that_exited_but_is_not_reaped_yet_is_known_dead() {
        let mut child = std::process::Command::new("sleep")
            .arg("0.2")
            .spawn()
            .unwrap();
        let pid = child.id();
        let name = format!("{}/{pid}/{}/abc", host(), start_time(pid).unwrap());
        assert!(!Owner::is_known_dead(&name), "running: {name}");
        // Not waited for: once it exits it stays a zombie until `wait` below.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap()
            .contains(") Z ")
        {
            assert!(
                std::time::Instant::now() < deadline,
                "sleep 0.2 did not exit"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(Owner::is_known_dead(&name), "a zombie: {name}");
        child.wait().unwrap();
        assert!(Owner::is_known_dead(&name), "reaped: {name}");
    }

    #[test]
    fn another_host_or_an_unreadable_name_is_never_taken_for_dead() {
        assert!(!Owner::is_known_dead("elsewhere.example/1/123/abc"));
        assert!(!Owner::is_known_dead("garbage"));
        assert!(!Owner::is_known_dead(&format!("{}/x/1/abc", host())));
    }
}
