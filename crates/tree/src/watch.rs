//! Watches of one shard's sessions and ZooKeeper 3.9's trigger rules (server/watch/
//! WatchManager.java, used twice by DataTree as `dataWatches` and `childWatches`).
//!
//! Not replicated: each shard keeps the watches of its own connections in plain std
//! collections. A (path, watcher) pair holds a set of kinds, so a one-shot and a
//! persistent watch on the same path coexist (ZooKeeper 3.9's WatcherMode per manager,
//! after ZOOKEEPER-4466). Rules, per event on `path`:
//! - NodeCreated, NodeDataChanged (dataWatches): data/exist watches on `path` (removed),
//!   persistent watches on `path`, recursive watches on `path` or an ancestor;
//! - NodeChildrenChanged (childWatches): child watches on `path` (removed) and persistent
//!   watches on `path`; never recursive ones;
//! - NodeDeleted (both): data and child watches on `path` (removed), persistent on `path`,
//!   recursive on `path` or an ancestor.
//!
//! A watcher gets at most one event per trigger (DataTree passes the data watchers as
//! `supress` to the child trigger). Results are ordered by watcher.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::Hash;

use zoocore_proto::EventType;

/// How a watch was set.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum WatchKind {
    /// getData with watch.
    Data,
    /// exists with watch (the same server-side list as Data).
    Exist,
    /// getChildren with watch.
    Child,
    /// addWatch PERSISTENT.
    Persistent,
    /// addWatch PERSISTENT_RECURSIVE.
    PersistentRecursive,
}

/// The `WatcherType` of checkWatches / removeWatches, as the wire carries it.
pub use zoocore_proto::records::WatcherType;

/// The watch bits a removeWatches / checkWatches of `kind` covers.
fn kind_bits(kind: WatcherType) -> u8 {
    match kind {
        WatcherType::Children => CHILD,
        WatcherType::Data => DATA,
        WatcherType::Persistent => PERSISTENT,
        WatcherType::PersistentRecursive => RECURSIVE,
        WatcherType::Any => DATA | CHILD | PERSISTENT | RECURSIVE,
    }
}

const DATA: u8 = 1;
const CHILD: u8 = 2;
const PERSISTENT: u8 = 4;
const RECURSIVE: u8 = 8;

fn kind_bit(kind: WatchKind) -> u8 {
    match kind {
        WatchKind::Data | WatchKind::Exist => DATA,
        WatchKind::Child => CHILD,
        WatchKind::Persistent => PERSISTENT,
        WatchKind::PersistentRecursive => RECURSIVE,
    }
}

/// The watches of one shard, keyed by a watcher id (a connection or session).
#[derive(Debug, Clone)]
pub struct WatchTable<W> {
    by_path: HashMap<String, HashMap<W, u8>>,
    by_watcher: HashMap<W, HashSet<String>>,
    recursive: usize,
}

impl<W> Default for WatchTable<W> {
    fn default() -> Self {
        Self {
            by_path: HashMap::new(),
            by_watcher: HashMap::new(),
            recursive: 0,
        }
    }
}

/// The ancestors of a path, nearest first, ending with "/".
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut cur = path;
    std::iter::from_fn(move || {
        if cur == "/" || cur.is_empty() {
            return None;
        }
        let i = cur.rfind('/')?;
        cur = if i == 0 { "/" } else { &cur[..i] };
        Some(cur)
    })
}

impl<W: Copy + Eq + Hash + Ord> WatchTable<W> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a watch. Setting the same kind twice is one watch.
    pub fn add(&mut self, path: &str, watcher: W, kind: WatchKind) {
        let bit = kind_bit(kind);
        let bits = self
            .by_path
            .entry(path.to_owned())
            .or_default()
            .entry(watcher)
            .or_insert(0);
        if bit == RECURSIVE && *bits & RECURSIVE == 0 {
            self.recursive += 1;
        }
        *bits |= bit;
        self.by_watcher
            .entry(watcher)
            .or_default()
            .insert(path.to_owned());
    }

    /// Fires the watches an event on `path` triggers; returns (watcher, event, path) once
    /// per watcher, ordered by watcher.
    pub fn trigger(&mut self, path: &str, event: EventType) -> Vec<(W, EventType, String)> {
        let (fire, consume) = match event {
            EventType::NodeCreated | EventType::NodeDataChanged => {
                (DATA | PERSISTENT | RECURSIVE, DATA)
            }
            EventType::NodeChildrenChanged => (CHILD | PERSISTENT, CHILD),
            EventType::NodeDeleted => (DATA | CHILD | PERSISTENT | RECURSIVE, DATA | CHILD),
            _ => return Vec::new(),
        };
        let mut fired: BTreeSet<W> = BTreeSet::new();
        let mut emptied: Vec<W> = Vec::new();
        if let Some(watchers) = self.by_path.get_mut(path) {
            for (w, bits) in watchers.iter_mut() {
                if *bits & fire != 0 {
                    fired.insert(*w);
                    *bits &= !consume;
                    if *bits == 0 {
                        emptied.push(*w);
                    }
                }
            }
            for w in &emptied {
                watchers.remove(w);
            }
            if watchers.is_empty() {
                self.by_path.remove(path);
            }
        }
        for w in emptied {
            self.forget_path(w, path);
        }
        if self.recursive > 0 && fire & RECURSIVE != 0 {
            for anc in ancestors(path) {
                if let Some(watchers) = self.by_path.get(anc) {
                    fired.extend(
                        watchers
                            .iter()
                            .filter(|(_, b)| **b & RECURSIVE != 0)
                            .map(|(w, _)| *w),
                    );
                }
            }
        }
        fired
            .into_iter()
            .map(|w| (w, event, path.to_owned()))
            .collect()
    }

    fn forget_path(&mut self, watcher: W, path: &str) {
        if let Some(paths) = self.by_watcher.get_mut(&watcher) {
            paths.remove(path);
            if paths.is_empty() {
                self.by_watcher.remove(&watcher);
            }
        }
    }

    /// removeWatches: removes the watcher's watches of `kind` on `path` and returns the
    /// removal events a client's watch manager reports for them (DataWatchRemoved,
    /// ChildWatchRemoved, PersistentWatchRemoved). Empty means NO_WATCHER. ZooKeeper's
    /// server sends no event for a removal; the client synthesises these locally.
    pub fn remove(&mut self, path: &str, watcher: W, kind: WatcherType) -> Vec<EventType> {
        let Some(watchers) = self.by_path.get_mut(path) else {
            return Vec::new();
        };
        let Some(bits) = watchers.get_mut(&watcher) else {
            return Vec::new();
        };
        let removed = *bits & kind_bits(kind);
        *bits &= !removed;
        let now_empty = *bits == 0;
        if now_empty {
            watchers.remove(&watcher);
            if watchers.is_empty() {
                self.by_path.remove(path);
            }
            self.forget_path(watcher, path);
        }
        if removed & RECURSIVE != 0 {
            self.recursive -= 1;
        }
        let mut events = Vec::new();
        if removed & DATA != 0 {
            events.push(EventType::DataWatchRemoved);
        }
        if removed & CHILD != 0 {
            events.push(EventType::ChildWatchRemoved);
        }
        if removed & (PERSISTENT | RECURSIVE) != 0 {
            events.push(EventType::PersistentWatchRemoved);
        }
        events
    }

    /// checkWatches: whether the watcher has a watch of `kind` on exactly `path`.
    pub fn contains(&self, path: &str, watcher: W, kind: WatcherType) -> bool {
        self.by_path
            .get(path)
            .and_then(|ws| ws.get(&watcher))
            .is_some_and(|b| b & kind_bits(kind) != 0)
    }

    /// Drops every watch of a watcher (its session closed or its connection went away).
    pub fn remove_watcher(&mut self, watcher: W) {
        let Some(paths) = self.by_watcher.remove(&watcher) else {
            return;
        };
        for p in paths {
            if let Some(watchers) = self.by_path.get_mut(&p) {
                if let Some(bits) = watchers.remove(&watcher) {
                    if bits & RECURSIVE != 0 {
                        self.recursive -= 1;
                    }
                }
                if watchers.is_empty() {
                    self.by_path.remove(&p);
                }
            }
        }
    }

    /// Number of watchers with a watch (wchs "connections watching").
    pub fn watcher_count(&self) -> usize {
        self.by_watcher.len()
    }

    /// Number of watched paths (wchs "paths").
    pub fn path_count(&self) -> usize {
        self.by_path.len()
    }

    /// Number of (path, watcher) pairs (wchs "Total watches").
    pub fn watch_count(&self) -> usize {
        self.by_watcher.values().map(HashSet::len).sum()
    }

    /// wchp: watchers per path, sorted.
    pub fn by_path(&self) -> BTreeMap<String, Vec<W>> {
        self.by_path
            .iter()
            .map(|(p, ws)| {
                let mut v: Vec<W> = ws.keys().copied().collect();
                v.sort();
                (p.clone(), v)
            })
            .collect()
    }

    /// wchc: paths per watcher, sorted.
    pub fn by_watcher(&self) -> BTreeMap<W, Vec<String>> {
        self.by_watcher
            .iter()
            .map(|(w, ps)| {
                let mut v: Vec<String> = ps.iter().cloned().collect();
                v.sort();
                (*w, v)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use EventType::*;

    fn fired(t: &mut WatchTable<u32>, path: &str, e: EventType) -> Vec<u32> {
        t.trigger(path, e)
            .into_iter()
            .map(|(w, ev, p)| {
                assert_eq!((ev, p.as_str()), (e, path));
                w
            })
            .collect()
    }

    #[test]
    fn one_shot_data_watch_fires_once() {
        let mut t = WatchTable::new();
        t.add("/a", 1, WatchKind::Data);
        t.add("/a", 2, WatchKind::Exist);
        assert_eq!(fired(&mut t, "/a", NodeChildrenChanged), Vec::<u32>::new());
        assert_eq!(fired(&mut t, "/a", NodeDataChanged), vec![1, 2]);
        assert_eq!(fired(&mut t, "/a", NodeDataChanged), Vec::<u32>::new());
        assert_eq!(t.watch_count(), 0);
        assert_eq!(t.path_count(), 0);
        assert_eq!(t.watcher_count(), 0);
    }

    #[test]
    fn child_watch_fires_on_children_changed_and_deleted_not_created() {
        let mut t = WatchTable::new();
        t.add("/a", 1, WatchKind::Child);
        // DataTree.createNode triggers NodeCreated on dataWatches only.
        assert!(fired(&mut t, "/a", NodeCreated).is_empty());
        assert!(fired(&mut t, "/a", NodeDataChanged).is_empty());
        assert_eq!(fired(&mut t, "/a", NodeChildrenChanged), vec![1]);
        t.add("/a", 1, WatchKind::Child);
        assert_eq!(fired(&mut t, "/a", NodeDeleted), vec![1]);
        assert_eq!(t.watch_count(), 0);
    }

    #[test]
    fn deleted_fires_once_per_watcher_with_data_and_child() {
        // DataTree.deleteNode passes the data watchers as `supress` to childWatches.
        let mut t = WatchTable::new();
        t.add("/a", 1, WatchKind::Data);
        t.add("/a", 1, WatchKind::Child);
        assert_eq!(fired(&mut t, "/a", NodeDeleted), vec![1]);
        assert_eq!(t.watch_count(), 0);
    }

    #[test]
    fn persistent_fires_on_every_event_of_its_path_and_stays() {
        let mut t = WatchTable::new();
        t.add("/a", 7, WatchKind::Persistent);
        for e in [
            NodeCreated,
            NodeDataChanged,
            NodeChildrenChanged,
            NodeDeleted,
            NodeCreated,
        ] {
            assert_eq!(fired(&mut t, "/a", e), vec![7], "{e:?}");
        }
        assert!(
            fired(&mut t, "/a/b", NodeCreated).is_empty(),
            "not recursive"
        );
        assert_eq!(t.watch_count(), 1);
    }

    #[test]
    fn recursive_fires_on_descendants_except_children_changed() {
        let mut t = WatchTable::new();
        t.add("/a", 3, WatchKind::PersistentRecursive);
        assert_eq!(fired(&mut t, "/a/b/c", NodeCreated), vec![3]);
        assert_eq!(fired(&mut t, "/a", NodeDataChanged), vec![3]);
        assert_eq!(fired(&mut t, "/a/b", NodeDeleted), vec![3]);
        assert!(fired(&mut t, "/a", NodeChildrenChanged).is_empty());
        assert!(
            fired(&mut t, "/ab", NodeCreated).is_empty(),
            "prefix is not an ancestor"
        );
        t.add("/", 4, WatchKind::PersistentRecursive);
        assert_eq!(fired(&mut t, "/x", NodeCreated), vec![4]);
        assert_eq!(fired(&mut t, "/a/q", NodeDataChanged), vec![3, 4]);
    }

    #[test]
    fn one_shot_and_persistent_coexist() {
        let mut t = WatchTable::new();
        t.add("/a", 1, WatchKind::Persistent);
        t.add("/a", 1, WatchKind::Data);
        assert_eq!(fired(&mut t, "/a", NodeDataChanged), vec![1]);
        assert!(t.contains("/a", 1, WatcherType::Persistent));
        assert!(!t.contains("/a", 1, WatcherType::Data), "one-shot consumed");
    }

    #[test]
    fn remove_and_contains() {
        let mut t = WatchTable::new();
        t.add("/a", 1, WatchKind::Data);
        t.add("/a", 1, WatchKind::Child);
        t.add("/b", 1, WatchKind::PersistentRecursive);
        assert!(t.contains("/a", 1, WatcherType::Children));
        assert!(t.contains("/a", 1, WatcherType::Any));
        assert!(!t.contains("/a", 2, WatcherType::Any));
        assert_eq!(
            t.remove("/a", 1, WatcherType::Children),
            vec![ChildWatchRemoved]
        );
        assert!(
            t.remove("/a", 1, WatcherType::Children).is_empty(),
            "NO_WATCHER"
        );
        assert_eq!(t.remove("/a", 1, WatcherType::Any), vec![DataWatchRemoved]);
        assert_eq!(
            t.remove("/b", 1, WatcherType::PersistentRecursive),
            vec![PersistentWatchRemoved]
        );
        assert_eq!(t.watch_count(), 0);
        assert!(fired(&mut t, "/b/c", NodeCreated).is_empty());
    }

    #[test]
    fn remove_watcher_drops_everything() {
        let mut t = WatchTable::new();
        t.add("/a", 1, WatchKind::Data);
        t.add("/a", 2, WatchKind::Data);
        t.add("/", 1, WatchKind::PersistentRecursive);
        t.remove_watcher(1);
        assert_eq!(t.watcher_count(), 1);
        assert_eq!(fired(&mut t, "/a", NodeDataChanged), vec![2]);
        assert_eq!(t.by_path().len(), 0);
        t.add("/z", 5, WatchKind::Child);
        assert_eq!(t.by_watcher().get(&5), Some(&vec!["/z".to_owned()]));
    }
}
