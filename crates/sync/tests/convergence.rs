//! Convergence under any interleaving: random offline edits on two or three
//! devices, random connects, disconnects, network cuts, dropped and
//! reordered live frames, all through the real engine and driver and a
//! simulated relay speaking the wire protocol. Once the network heals,
//! every device holds the same contacts.

mod support;

use futures::executor::block_on;
use proptest::prelude::*;
use rapport_core::consent::ConsentAction;
use rapport_core::contact::Contact;
use rapport_core::ids::RecordId;
use rapport_sync::driver::Event;
use support::sim::World;
use support::{consent, create_contact, edit_contact, labeled, read_contact, T0};

#[derive(Debug, Clone)]
enum Step {
    /// Sets one field of a contact to one of a few values (so that devices
    /// often write the same field concurrently).
    Set {
        client: usize,
        contact: usize,
        field: u8,
        value: u8,
    },
    /// Records a consent event.
    Consent {
        client: usize,
        contact: usize,
        grant: bool,
    },
    /// Adds an email address.
    AddEmail {
        client: usize,
        contact: usize,
    },
    /// Creates a contact.
    Create {
        client: usize,
    },
    Online(usize),
    Offline(usize),
    /// Runs this many steps of the device's network.
    Deliver {
        client: usize,
        count: u8,
    },
    /// The network fails.
    Cut(usize),
    /// The relay drops live frames for the device and says `Behind`.
    Lag(usize),
    /// Two live frames arrive out of order.
    Reorder(usize),
    /// Time passes (timers fire: reconnects, timeouts).
    Wait(u16),
}

fn step() -> impl Strategy<Value = Step> {
    let client = 0usize..3;
    prop_oneof![
        4 => (client.clone(), 0usize..3, 0u8..4, 0u8..4)
            .prop_map(|(client, contact, field, value)| Step::Set { client, contact, field, value }),
        2 => (client.clone(), 0usize..3, any::<bool>()).prop_map(|(client, contact, grant)| Step::Consent { client, contact, grant }),
        1 => (client.clone(), 0usize..3).prop_map(|(client, contact)| Step::AddEmail { client, contact }),
        1 => client.clone().prop_map(|client| Step::Create { client }),
        2 => client.clone().prop_map(Step::Online),
        2 => client.clone().prop_map(Step::Offline),
        6 => (client.clone(), 1u8..12).prop_map(|(client, count)| Step::Deliver { client, count }),
        1 => client.clone().prop_map(Step::Cut),
        1 => client.clone().prop_map(Step::Lag),
        3 => client.clone().prop_map(Step::Reorder),
        1 => (1u16..400).prop_map(Step::Wait),
    ]
}

fn contact_id(k: usize) -> RecordId {
    RecordId::from_bytes([0xc0, k as u8, 0, 0, 0, 0, 0x70, 0, 0x80, 0, 0, 0, 0, 0, 0, 7])
}

const VALUES: [&str; 4] = ["", "Ada", "Grace", "Hedy"];

struct Run {
    world: World,
    contacts: usize,
    counter: u8,
}

impl Run {
    fn has(&self, client: usize, id: RecordId) -> bool {
        block_on(rapport_core::storage::Storage::load(self.world.clients[client].repo.storage(), id))
            .ok()
            .flatten()
            .is_some_and(|_| block_on(self.world.clients[client].repo.open::<Contact>(id, T0)).is_ok())
    }

    fn edit(&mut self, client: usize, contact: usize, edit: impl FnOnce(&mut Contact, u8)) {
        let id = contact_id(contact);
        if contact >= self.contacts || !self.has(client, id) {
            return;
        }
        self.counter = self.counter.wrapping_add(1);
        let n = self.counter;
        block_on(edit_contact(&self.world.clients[client].repo, id, |c| edit(c, n)));
        self.world.handle(client, Event::LocalChanges);
    }

    fn create(&mut self, client: usize) {
        if self.contacts >= 6 {
            return;
        }
        let id = contact_id(self.contacts);
        self.contacts += 1;
        let who = client as u8 + 1;
        block_on(create_contact(&self.world.clients[client].repo, id, who, |c| c.given_name = format!("new {id}")));
        self.world.handle(client, Event::LocalChanges);
    }

    fn apply(&mut self, step: Step) {
        let n = self.world.clients.len();
        match step {
            Step::Set { client, contact, field, value } => self.edit(client % n, contact, |c, _| {
                let value = VALUES[value as usize].to_owned();
                match field {
                    0 => c.given_name = value,
                    1 => c.family_name = value,
                    2 => c.title = value,
                    _ => c.company_name = value,
                }
            }),
            Step::Consent { client, contact, grant } => {
                let who = (client % n) as u8 + 1;
                let action = if grant { ConsentAction::Granted } else { ConsentAction::Withdrawn };
                self.edit(client % n, contact, |c, k| {
                    c.consent.record(consent(who, k, action));
                })
            }
            Step::AddEmail { client, contact } => {
                let who = (client % n) as u8 + 1;
                self.edit(client % n, contact, |c, k| {
                    c.emails.push(labeled(who, k, "work", &format!("{k}@example.test")))
                })
            }
            Step::Create { client } => self.create(client % n),
            Step::Online(client) => self.world.handle(client % n, Event::Start),
            Step::Offline(client) => self.world.handle(client % n, Event::Stop),
            Step::Deliver { client, count } => {
                for _ in 0..count {
                    self.world.deliver(client % n);
                }
            }
            Step::Cut(client) => self.world.cut(client % n),
            Step::Lag(client) => self.world.lag(client % n),
            Step::Reorder(client) => self.world.reorder(client % n),
            Step::Wait(ms) => self.world.wait(u64::from(ms)),
        }
    }
}

fn heads(world: &World, client: usize, id: RecordId) -> Vec<automerge::ChangeHash> {
    let mut handle = block_on(world.clients[client].repo.open_doc(id, T0)).expect("document");
    let mut heads = handle.doc_mut().get_heads();
    heads.sort();
    heads
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(support::proptest_cases(64)))]

    #[test]
    fn random_offline_edits_and_connection_interleavings_converge_to_the_same_contacts(
        clients in 2usize..=3,
        steps in proptest::collection::vec(step(), 1..80),
        seed in any::<u64>(),
    ) {
        let mut run = Run { world: World::new(clients, seed), contacts: 0, counter: 0 };
        run.create(0);
        run.create(0);
        run.world.heal();
        for step in steps {
            run.apply(step);
        }
        run.world.heal();

        for k in 0..run.contacts {
            let id = contact_id(k);
            let first = block_on(read_contact(&run.world.clients[0].repo, id));
            let first_heads = heads(&run.world, 0, id);
            for c in 1..clients {
                prop_assert_eq!(&block_on(read_contact(&run.world.clients[c].repo, id)), &first, "contact {} on device {}", k, c);
                prop_assert_eq!(&heads(&run.world, c, id), &first_heads);
            }
        }
        for (c, client) in run.world.clients.iter().enumerate() {
            prop_assert!(client.seen.problems.borrow().iter().all(|p| !matches!(p, rapport_sync::SyncProblem::Protocol(_))),
                "device {} saw {:?}", c, client.seen.problems.borrow());
        }
    }
}

#[test]
fn devices_that_never_met_online_converge_through_the_relay() {
    let mut run = Run { world: World::new(3, 7), contacts: 0, counter: 0 };
    run.create(0);
    run.world.heal();
    for c in 0..3 {
        run.world.handle(c, Event::Stop);
    }
    for c in 0..3 {
        run.apply(Step::Set { client: c, contact: 0, field: 0, value: c as u8 + 1 });
        run.apply(Step::Consent { client: c, contact: 0, grant: c != 1 });
        // Each comes online alone, then leaves.
        run.world.handle(c, Event::Start);
        for _ in 0..200 {
            if !run.world.deliver(c) {
                break;
            }
        }
        run.world.handle(c, Event::Stop);
    }
    run.world.heal();
    let id = contact_id(0);
    let merged = block_on(read_contact(&run.world.clients[0].repo, id));
    for c in 1..3 {
        assert_eq!(block_on(read_contact(&run.world.clients[c].repo, id)), merged);
    }
    assert_eq!(merged.consent.status(&support::marketing()), rapport_core::consent::ConsentStatus::Withdrawn);
}

/// One entry on the relay that no device can read (garbage under a
/// record's tag, or from a member with another key) must not stop any
/// device, including ones that join afterwards, from pulling past it.
#[test]
fn a_poisoned_entry_is_set_aside_by_every_device_and_sync_converges_past_it() {
    use rapport_protocol::{EntryKind, Envelope, LogEntry, Seq};
    let mut world = World::new(3, 11);
    let ada = contact_id(0);
    // The first entry of the log is poisoned, before any device synced.
    let doc_tag = rapport_sync::plaintext::doc_tag(&world.config.keys(), ada);
    let poisoned = Seq(world.relay.head().0 + 1);
    world.relay.log.push(LogEntry {
        seq: poisoned,
        kind: EntryKind::Change,
        envelope: Envelope { doc_tag, nonce: [7; 24], ciphertext: vec![0x5a; 48] },
    });
    block_on(create_contact(&world.clients[0].repo, ada, 1, |c| c.given_name = "Ada".into()));
    world.handle(0, Event::LocalChanges);
    world.heal();
    block_on(edit_contact(&world.clients[2].repo, ada, |c| c.title = "Countess".into()));
    world.handle(2, Event::LocalChanges);
    world.heal();
    for (i, client) in world.clients.iter().enumerate() {
        assert_eq!(client.driver.cursor(), world.relay.head(), "device {i} is past the poisoned entry");
        let listed = client.driver.quarantined();
        assert_eq!(listed.entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [poisoned], "device {i}");
        let on = block_on(read_contact(&client.repo, ada));
        assert_eq!((on.given_name.as_str(), on.title.as_str()), ("Ada", "Countess"), "device {i}");
    }
}
