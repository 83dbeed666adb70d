//! The whole workbook, as a learner lives it: one watcher, every exercise saved solved in the
//! editor, one after another, `n` between them, from the first exercise to the final message.
//! It checks that each topic unlocks the next and that nothing in the curriculum stops a learner
//! who does the work (a lab that hangs, a pass not recorded, an exercise the order skips).

mod common;

use common::TempWorkbook;
use serde::Deserialize;

#[derive(Deserialize)]
struct Info {
    final_message: String,
    topics: Vec<Topic>,
    exercises: Vec<Exercise>,
}

#[derive(Deserialize)]
struct Topic {
    name: String,
    title: String,
    dir: String,
}

#[derive(Deserialize)]
struct Exercise {
    name: String,
    topic: String,
}

#[test]
fn a_learner_saves_their_way_through_every_topic_to_the_final_message() {
    let wb = TempWorkbook::new();
    let info: Info = toml::from_str(&wb.read("info.toml")).unwrap();
    let topic = |name: &str| info.topics.iter().find(|t| t.name == name).unwrap();
    let mut watcher = wb.watcher(&[]);

    for (i, exercise) in info.exercises.iter().enumerate() {
        let dir = &topic(&exercise.topic).dir;
        let verdict = watcher.next_verdict(&exercise.name);
        assert!(
            verdict.starts_with('✗'),
            "{} should fail as shipped: {verdict}",
            exercise.name
        );
        wb.solve(dir, &exercise.name);
        let verdict = watcher.next_verdict(&exercise.name);
        assert!(
            verdict.starts_with('✓'),
            "{} should pass once its solution is saved: {verdict}",
            exercise.name
        );
        let Some(next) = info.exercises.get(i + 1) else {
            break;
        };
        if next.topic != exercise.topic {
            let (done, upcoming) = (topic(&exercise.topic), topic(&next.topic));
            watcher.expect(&format!(
                "Topic {} · {} is complete. Next topic: {} · {}",
                done.dir, done.title, upcoming.dir, upcoming.title
            ));
        }
        watcher.expect("send n for the next exercise");
        watcher.send("n");
        watcher.expect(&format!(
            "now on {} (exercises/{}/{}.rs)",
            next.name,
            topic(&next.topic).dir,
            next.name
        ));
    }

    // The last pass of the workbook ends with the final message.
    let final_line = info.final_message.trim().lines().next().unwrap();
    watcher.expect(final_line);
    watcher.expect("send n for the next exercise");
    let (status, printed) = watcher.finish();
    assert!(status.success(), "{}", printed.join("\n"));

    let state = wb.read(".sdlings-state.toml");
    for exercise in &info.exercises {
        assert!(
            state.contains(&format!("[exercises.{}]\ndone = true", exercise.name)),
            "{} is not recorded as done:\n{state}",
            exercise.name
        );
    }
}
