//! Synthetic CM syslog traffic for benchmarks, load tests and the demo: noise lines shaped like
//! what CM sends besides commands (IP endpoint events, denial events, ecs log records), and
//! admin commands in every shape the classifier reads. Deterministic for a given seed.

/// A small, fast, seedable generator (xorshift64*); not for anything secret.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// One noise line (tag and text, as the module receives it).
pub fn noise_line(rng: &mut Rng) -> String {
    let ip = format!(
        "10.{}.{}.{}",
        rng.below(256),
        rng.below(256),
        1 + rng.below(254)
    );
    let ext = 1000 + rng.below(9000);
    match rng.below(6) {
        0 => format!(
            "IPEVT: IPEVT IPT_REG board=PROCR ip={ip} port=1719 ext={ext} net_reg=1 type=9611G"
        ),
        1 => {
            format!("IPEVT: IPEVT IPT_UNREG board=PROCR ip={ip} ext={ext} reason=keepalive_timeout")
        }
        2 => format!(
            "DENYEVT: DENYEVT event=1225 d1={:x} d2={:x} ip={ip} desc=\"Call denied\"",
            rng.below(65536),
            rng.below(65536)
        ),
        3 => format!(
            "20261125:1015{:05}:{}:lxsys(123):LOW:[IP_API: ip={ip} sig=H.323 state=connected]",
            rng.below(100_000),
            rng.below(99_999)
        ),
        4 => format!(
            "MSG: procr {}: link status up ip={ip} trunk={} member={}",
            rng.below(32),
            rng.below(64),
            rng.below(24)
        ),
        _ => format!(
            "CMSYS: mst buffer usage {}% queue=transmit cpu={}%",
            rng.below(100),
            rng.below(100)
        ),
    }
}

/// One admin command line, in one of the shapes CM may send.
pub fn command_line(rng: &mut Rng) -> String {
    let ext = 1000 + rng.below(9000);
    let (verb, object) = *rng.pick(&[
        ("change", "station"),
        ("cha", "sta"),
        ("add", "station"),
        ("remove", "station"),
        ("change", "hunt-group"),
        ("change", "vdn"),
        ("change", "agent-loginID"),
        ("change", "coverage path"),
    ]);
    let client = if rng.below(2) == 0 {
        "10.1.2.3".to_owned()
    } else {
        format!("2001:db8::{:x}", rng.below(65536))
    };
    match rng.below(4) {
        0 => format!("cmdhist: {verb} {object} {ext}"),
        1 => format!(
            "20261125:1015{:05}:4711:cmdhist(2301):MED:[dadmin SAT {client} {verb} {object} {ext}]",
            rng.below(100_000)
        ),
        2 => format!("cmdhist: 11/25 10:15 SAT dadmin {verb} {object} {ext}"),
        _ => format!("cmdhist: login=dadmin port=ssh src={client} cmd=\"{verb} {object} {ext}\""),
    }
}

/// `n` lines, `command_percent` % of them commands, the rest noise.
pub fn mixed_lines(rng: &mut Rng, n: usize, command_percent: u64) -> Vec<String> {
    (0..n)
        .map(|_| {
            if rng.below(100) < command_percent {
                command_line(rng)
            } else {
                noise_line(rng)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::{Classifier, Verdict};

    #[test]
    fn noise_is_noise_and_commands_are_events() {
        let c = Classifier::default();
        let mut rng = Rng::new(7);
        for _ in 0..2000 {
            let n = noise_line(&mut rng);
            assert!(
                matches!(c.classify(n.as_bytes()), Verdict::Ignored(_)),
                "{n}"
            );
            let cmd = command_line(&mut rng);
            assert!(
                matches!(c.classify(cmd.as_bytes()), Verdict::Event(_)),
                "{cmd}"
            );
        }
    }
}
