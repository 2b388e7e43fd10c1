//! The table the hot path reads: elements by sender address, built from a list and the
//! addresses its host names had, swapped as a whole.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use super::{literal, ElementSpec};
use crate::line::canonical;

/// One element, ready for the hot path.
#[derive(Debug)]
pub struct Element {
    pub name: Arc<str>,
    pub notify: bool,
    /// Its hosts as the list names them (CM's servers: where its SAT is reached too).
    pub hosts: Vec<String>,
    /// Lower-cased: logins compare case-insensitively.
    ignore_logins: Vec<String>,
}

impl Element {
    /// A change by this login is System Manager's own, echoed back by CM.
    pub fn ignores_login(&self, login: &str) -> bool {
        self.ignore_logins
            .iter()
            .any(|l| l.eq_ignore_ascii_case(login))
    }
}

/// Elements by sender address.
#[derive(Debug, Default)]
pub struct ElementTable {
    elements: Vec<Element>,
    by_addr: HashMap<IpAddr, usize>,
    /// Host names that resolved to nothing at the last refresh.
    pub unresolved: Vec<String>,
    /// Addresses two elements claim (the first keeps it), as messages naming both.
    pub conflicts: Vec<String>,
}

impl ElementTable {
    /// Builds the table; `resolve` turns a host name into addresses.
    pub fn build(specs: &[ElementSpec], resolve: impl Fn(&str) -> Vec<IpAddr>) -> Self {
        let mut table = ElementTable::default();
        for spec in specs {
            let index = table.elements.len();
            table.elements.push(Element {
                name: spec.name.as_str().into(),
                notify: spec.notify,
                hosts: spec.hosts.clone(),
                ignore_logins: spec
                    .ignore_logins
                    .iter()
                    .map(|l| l.to_ascii_lowercase())
                    .collect(),
            });
            for host in &spec.hosts {
                let addrs = match literal(host) {
                    Some(ip) => vec![ip],
                    None => resolve(host).into_iter().map(canonical).collect(),
                };
                if addrs.is_empty() {
                    table.unresolved.push(host.clone());
                }
                for addr in addrs {
                    let owner = *table.by_addr.entry(addr).or_insert(index);
                    if owner != index {
                        table.conflicts.push(format!(
                            "address {addr} ({host}) of '{}' belongs to '{}' already; it stays '{}''s",
                            spec.name, table.elements[owner].name, table.elements[owner].name
                        ));
                    }
                }
            }
        }
        table
    }

    /// The elements' names, in the list's order.
    pub fn names(&self) -> impl Iterator<Item = &Arc<str>> {
        self.elements.iter().map(|e| &e.name)
    }

    /// The element named `name`.
    pub fn get(&self, name: &str) -> Option<&Element> {
        self.elements.iter().find(|e| &*e.name == name)
    }

    /// The element a sender belongs to.
    pub fn lookup(&self, sender: IpAddr) -> Option<&Element> {
        self.by_addr
            .get(&canonical(sender))
            .map(|&i| &self.elements[i])
    }
}
