// Schema evolution — a tolerant reader and a conservative writer, across producer versions.
//
// Services are deployed one at a time, so for a while old and new versions of a payload meet in
// both directions: a new producer adds fields an old consumer has never heard of, renames one,
// and an old consumer writes back a document it only partly understands. Postel's "be liberal
// in what you accept, conservative in what you send", and Fowler's Tolerant Reader: read only
// what you need, ignore what you do not know, keep it if you write the document back. Protobuf
// and Avro build the same rules into the format (unknown fields kept, defaults for absent ones).
//
// Build `read` and `write` for the current (v3) order consumer. The property: payloads of
// producers v1..v3 read (unknown fields ignored but kept; `customer`, the old name of
// `customer_id`, accepted; an absent currency is "USD", an absent or null note is None); a
// payload without a required field, or with a wrong type, is an error naming the field (v4
// removed `total_cents`: it must not read as 0); what `write` emits reads back unchanged here
// and in the kit's v1 and v2 consumers. Lab: every producer version against every consumer.

use sdlings_kit_http::schemas::{self, Sample};
use serde_json::{Map, Value};

// ---- Your part -------------------------------------------------------------------------------

/// The currency of orders from producers that predate the field (v1 priced everything in USD).
pub const DEFAULT_CURRENCY: &str = "USD";

/// An order as the v3 consumer sees it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Order {
    pub id: u64,
    /// Called `customer` before v3.
    pub customer_id: String,
    pub total_cents: u64,
    pub currency: String,
    pub note: Option<String>,
    /// Every field this consumer does not know, as received: written back unchanged.
    pub extra: Map<String, Value>,
}

/// Why a payload cannot be read, naming the field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// Not JSON, or not a JSON object.
    NotAnObject,
    /// A required field is absent (by its current name).
    Missing(&'static str),
    /// A field has the wrong type or value.
    Invalid(&'static str),
}

/// Removes a required field and converts it, or names what is wrong with it.
fn required<T>(
    map: &mut Map<String, Value>,
    name: &'static str,
    convert: impl Fn(Value) -> Option<T>,
) -> Result<T, ReadError> {
    let value = map.remove(name).ok_or(ReadError::Missing(name))?;
    convert(value).ok_or(ReadError::Invalid(name))
}

fn string(value: Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s),
        _ => None,
    }
}

/// Reads an order written by any producer from v1 to v3 (or by `write`).
pub fn read(body: &[u8]) -> Result<Order, ReadError> {
    let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(body) else {
        return Err(ReadError::NotAnObject);
    };
    let id = required(&mut map, "id", |v| v.as_u64())?;
    // The rename: the new name wins, the old one is accepted, and both are consumed (a stale
    // `customer` left in `extra` would be written back over the new value).
    let old_name = map.remove("customer");
    let customer = match map.remove("customer_id").or(old_name) {
        Some(value) => string(value).ok_or(ReadError::Invalid("customer_id"))?,
        None => return Err(ReadError::Missing("customer_id")),
    };
    // Required means required: a default here would read v4's orders as free.
    let total_cents = required(&mut map, "total_cents", |v| v.as_u64())?;
    let currency = match map.remove("currency") {
        None | Some(Value::Null) => DEFAULT_CURRENCY.to_string(),
        Some(value) => string(value).ok_or(ReadError::Invalid("currency"))?,
    };
    let note = match map.remove("note") {
        None | Some(Value::Null) => None,
        Some(value) => Some(string(value).ok_or(ReadError::Invalid("note"))?),
    };
    Ok(Order {
        id,
        customer_id: customer,
        total_cents,
        currency,
        note,
        extra: map, // what is left is what this consumer does not know
    })
}

/// Writes an order so that this consumer and the older ones (v1: `customer`; v2: `currency`
/// required) can read it, with the unknown fields it was read with.
pub fn write(order: &Order) -> Vec<u8> {
    let mut map = order.extra.clone();
    map.insert("id".into(), order.id.into());
    // Both names until no reader of the old one is left (expand, then contract).
    map.insert("customer_id".into(), order.customer_id.clone().into());
    map.insert("customer".into(), order.customer_id.clone().into());
    map.insert("total_cents".into(), order.total_cents.into());
    map.insert("currency".into(), order.currency.clone().into());
    if let Some(note) = &order.note {
        map.insert("note".into(), note.clone().into());
    }
    serde_json::to_vec(&Value::Object(map)).expect("a JSON object serialises")
}

// ---- Lab -------------------------------------------------------------------------------------

/// The order every producer version writes in the lab.
const TOTAL_CENTS: u64 = 1250;

fn main() {
    let sample = Sample {
        id: 42,
        customer: "ada".into(),
        total_cents: TOTAL_CENTS,
        currency: "EUR".into(),
        note: Some("leave at the door".into()),
    };
    let consumers: [schemas::Consumer<'_>; 4] = [
        ("v1, strict (deny unknown)", &|b| {
            schemas::read_v1_strict(b).map(|_| ())
        }),
        ("v1, tolerant", &|b| schemas::read_v1(b).map(|_| ())),
        ("v2, tolerant", &|b| schemas::read_v2(b).map(|_| ())),
        ("v3 (yours)", &|b| {
            read(b).map(|_| ()).map_err(|e| format!("{e:?}"))
        }),
    ];
    schemas::lab(&consumers, &sample, &|v3| {
        write(&read(v3).expect("v3 reads"))
    });
}

#[cfg(test)]
mod tests {
    use rand::RngExt;
    use sdlings_kit_http::schemas::{produce, read_v1, read_v2};
    use serde_json::json;

    use super::*;

    fn sample(note: Option<&str>) -> Sample {
        Sample {
            id: 7,
            customer: "ada".into(),
            total_cents: 1200,
            currency: "EUR".into(),
            note: note.map(str::to_string),
        }
    }

    fn order(currency: &str, note: Option<&str>, extra: Value) -> Order {
        let Value::Object(extra) = extra else {
            panic!()
        };
        Order {
            id: 7,
            customer_id: "ada".into(),
            total_cents: 1200,
            currency: currency.into(),
            note: note.map(str::to_string),
            extra,
        }
    }

    #[test]
    fn every_producer_from_v1_to_v3_is_read() {
        let s = sample(Some("ring twice"));
        assert_eq!(
            read(&produce(1, &s)),
            Ok(order(DEFAULT_CURRENCY, None, json!({}))),
            "v1 has no currency (it meant USD) and no note; `customer` is customer_id's old name"
        );
        assert_eq!(
            read(&produce(2, &s)),
            Ok(order("EUR", Some("ring twice"), json!({})))
        );
        assert_eq!(
            read(&produce(2, &sample(None))),
            Ok(order("EUR", None, json!({}))),
            "v2 leaves an empty note out"
        );
        assert_eq!(
            read(&produce(3, &sample(None))),
            Ok(order(
                "EUR",
                None,
                json!({"channel": "web", "lines": [{"sku": "tea-1", "qty": 2}]})
            )),
            "v3 renames customer to customer_id, writes a null note, and adds fields this \
             consumer does not know: they are ignored, and kept in `extra`"
        );
    }

    #[test]
    fn a_missing_required_field_is_an_error_naming_it_not_a_default() {
        assert_eq!(
            read(&produce(4, &sample(None))),
            Err(ReadError::Missing("total_cents")),
            "v4 removed total_cents: reading its orders as 0 cents would be a silent disaster"
        );
        let cases = [
            (
                json!({"customer": "a", "total_cents": 1}),
                ReadError::Missing("id"),
            ),
            (
                json!({"id": 1, "total_cents": 1}),
                ReadError::Missing("customer_id"),
            ),
            (
                json!({"id": 1, "customer_id": "a"}),
                ReadError::Missing("total_cents"),
            ),
        ];
        for (payload, expected) in cases {
            assert_eq!(
                read(&serde_json::to_vec(&payload).unwrap()),
                Err(expected),
                "{payload}"
            );
        }
    }

    #[test]
    fn a_field_of_the_wrong_type_is_an_error_naming_it() {
        let base =
            json!({"id": 1, "customer_id": "a", "total_cents": 5, "currency": "EUR", "note": "n"});
        let cases = [
            ("id", json!("1"), "id"),
            ("total_cents", json!("1200"), "total_cents"),
            ("total_cents", json!(-5), "total_cents"),
            ("total_cents", json!(12.5), "total_cents"),
            ("customer_id", json!(17), "customer_id"),
            ("currency", json!(978), "currency"),
            ("note", json!(["n"]), "note"),
        ];
        for (field, value, named) in cases {
            let mut payload = base.clone();
            payload[field] = value.clone();
            assert_eq!(
                read(&serde_json::to_vec(&payload).unwrap()),
                Err(ReadError::Invalid(named)),
                "{field} = {value}: the wrong type, not a value to guess from"
            );
        }
        for body in [&b"not json"[..], b"[1, 2]", b"42", b""] {
            assert_eq!(
                read(body),
                Err(ReadError::NotAnObject),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn the_new_name_wins_when_a_payload_carries_both() {
        let payload = json!({"id": 1, "customer": "old", "customer_id": "new", "total_cents": 5});
        let order = read(&serde_json::to_vec(&payload).unwrap()).unwrap();
        assert_eq!(order.customer_id, "new", "customer_id is the current name");
        assert!(
            order.extra.is_empty(),
            "both names are known fields, not extra: {:?}",
            order.extra
        );
    }

    #[test]
    fn unknown_fields_are_written_back_unchanged() {
        let v3 = produce(3, &sample(Some("hi")));
        let mut order = read(&v3).unwrap();
        order.note = None;
        let written: Value = serde_json::from_slice(&write(&order)).unwrap();
        let original: Value = serde_json::from_slice(&v3).unwrap();
        for field in ["channel", "lines"] {
            assert_eq!(
                written[field], original[field],
                "a v3 field this consumer does not know: {field}"
            );
        }
        order.extra.insert("total_cents".into(), json!(1));
        assert_eq!(
            read(&write(&order)).unwrap().total_cents,
            1200,
            "a stale copy of a known field in `extra` must not win over the field itself"
        );
    }

    #[test]
    fn old_consumers_read_what_we_write_even_after_a_change() {
        let mut order = read(&produce(3, &sample(None))).unwrap();
        order.customer_id = "grace".into();
        order.total_cents = 99;
        let body = write(&order);
        let v1 = read_v1(&body).expect("the v1 consumer needs `customer`: write the old name too");
        assert_eq!(
            (v1.id, v1.customer.as_str(), v1.total_cents),
            (7, "grace", 99)
        );
        let v2 = read_v2(&body).expect("the v2 consumer requires the currency");
        assert_eq!(
            (v2.customer.as_str(), v2.currency.as_str()),
            ("grace", "EUR")
        );
        let again = read(&body).unwrap();
        let mut changed = again.clone();
        changed.customer_id = "linus".into();
        assert_eq!(
            read_v1(&write(&changed)).unwrap().customer,
            "linus",
            "read, change, write: old readers see the change"
        );
        assert_eq!(again, order, "write then read is the identity");
    }

    #[test]
    fn the_producer_consumer_matrix_holds_for_many_orders() {
        sdlings_kit::property::for_seeds(300, |rng| {
            let s = Sample {
                id: rng.random(),
                customer: format!("c{}", rng.random::<u16>()),
                total_cents: [0, u64::MAX, rng.random()][rng.random_range(0..3)],
                // Whatever the producer sent, as sent: no case folding, an empty note is a note.
                currency: ["EUR", "USD", "JPY", "eur", "Btc"][rng.random_range(0..5)].into(),
                note: match rng.random_range(0..3) {
                    0 => None,
                    1 => Some(String::new()),
                    _ => Some(format!("n{}", rng.random::<u8>())),
                },
            };
            let version = rng.random_range(1..=3u8);
            let mut payload: Value = serde_json::from_slice(&produce(version, &s)).unwrap();
            let mut extra = Map::new();
            for i in 0..rng.random_range(0..3) {
                // Unknown fields of any JSON type, null included: kept as received.
                let v = match rng.random_range(0..4) {
                    0 => Value::Null,
                    1 => json!(rng.random::<u32>()),
                    2 => json!(["s", null]),
                    _ => json!({"k": rng.random::<u32>(), "n": null}),
                };
                payload[format!("x{i}")] = v.clone();
                extra.insert(format!("x{i}"), v);
            }
            if version == 3 {
                extra.insert("channel".into(), payload["channel"].clone());
                extra.insert("lines".into(), payload["lines"].clone());
            }
            let expected = Order {
                id: s.id,
                customer_id: s.customer.clone(),
                total_cents: s.total_cents,
                currency: if version == 1 {
                    DEFAULT_CURRENCY.into()
                } else {
                    s.currency.clone()
                },
                note: if version == 1 { None } else { s.note.clone() },
                extra,
            };
            let got = read(&serde_json::to_vec(&payload).unwrap());
            assert_eq!(
                got.as_ref(),
                Ok(&expected),
                "producer v{version}: {payload}"
            );
            let body = write(&expected);
            assert_eq!(read(&body).as_ref(), Ok(&expected), "write then read");
            let v1 = read_v1(&body).expect("v1 reads what we write");
            assert_eq!(
                (v1.id, &v1.customer, v1.total_cents),
                (s.id, &s.customer, s.total_cents)
            );
            let v2 = read_v2(&body).expect("v2 reads what we write");
            assert_eq!(
                (&v2.currency, &v2.note),
                (&expected.currency, &expected.note)
            );
        });
    }
}
