//! PlanService end to end: versions, validation as a whole, and plans in files.

use muster_client::proto as pb;
use muster_tests::TestServer;
use tonic::Code;

use crate::support::check_error;

/// A small flood plan: levels IV to I, water_level_m triggers.
pub fn flood_plan() -> pb::Plan {
    let level = |level: pb::Level, boats: u32, sandbags: i64| pb::LevelRequirement {
        level: level.into(),
        teams: vec![pb::TeamNeed { capability: "water_rescue".into(), min_tier: 2, count: boats }],
        supplies: vec![pb::SupplyNeed { item_code: "sandbag".into(), quantity: sandbags }],
        tasks: vec![pb::Task {
            title: "Evacuate low-lying streets".into(),
            lead: "District government".into(),
            supporting: vec!["Police".into()],
        }],
    };
    let trigger = |threshold: f64, level: pb::Level| pb::Trigger {
        metric: "water_level_m".into(),
        threshold,
        level: level.into(),
    };
    pb::Plan {
        id: "flood".into(),
        name: "Special plan for river flooding".into(),
        hazard: pb::Hazard::Flood.into(),
        levels: vec![
            level(pb::Level::Iv, 1, 1_000),
            level(pb::Level::Iii, 2, 5_000),
            level(pb::Level::Ii, 4, 20_000),
            level(pb::Level::I, 7, 50_000),
        ],
        triggers: vec![trigger(37.0, pb::Level::Iii), trigger(38.0, pb::Level::Ii), trigger(39.5, pb::Level::I)],
        version: 0,
    }
}

pub async fn put(client: &muster_client::Client, plan: pb::Plan) -> pb::Plan {
    client
        .plans()
        .put_plan(pb::PutPlanRequest { request_id: String::new(), plan: Some(plan) })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn every_put_is_a_new_version_and_old_versions_stay_readable() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let first = put(&client, flood_plan()).await;
    assert_eq!(first.version, 1);
    let mut changed = flood_plan();
    changed.levels[3].teams[0].count = 9;
    let second = put(&client, changed).await;
    assert_eq!(second.version, 2);
    let mut plans = client.plans();
    let latest = plans.get_plan(pb::GetPlanRequest { id: "flood".into(), version: 0 }).await.unwrap().into_inner();
    assert_eq!(latest, second);
    let old = plans.get_plan(pb::GetPlanRequest { id: "flood".into(), version: 1 }).await.unwrap().into_inner();
    assert_eq!(old, first);
    assert_eq!(old.levels[3].teams[0].count, 7);
    check_error(plans.get_plan(pb::GetPlanRequest { id: "flood".into(), version: 3 }).await, Code::NotFound, None);
    check_error(plans.get_plan(pb::GetPlanRequest { id: "quake".into(), version: 0 }).await, Code::NotFound, None);

    let mut power = flood_plan();
    power.id = "power".into();
    power.hazard = pb::Hazard::PowerOutage.into();
    put(&client, power).await;
    let floods = plans
        .list_plans(pb::ListPlansRequest { hazard: pb::Hazard::Flood.into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        floods.plans.iter().map(|plan| (plan.id.as_str(), plan.version)).collect::<Vec<_>>(),
        vec![("flood", 2)]
    );
    let all = plans.list_plans(pb::ListPlansRequest::default()).await.unwrap().into_inner();
    assert_eq!(all.plans.len(), 2);
}

async fn check_invalid_plan(client: &muster_client::Client, field: &str, change: impl FnOnce(&mut pb::Plan)) {
    let mut plan = flood_plan();
    change(&mut plan);
    let result = client.plans().put_plan(pb::PutPlanRequest { request_id: String::new(), plan: Some(plan) }).await;
    check_error(result, Code::InvalidArgument, Some(field));
}

#[tokio::test]
async fn a_plan_is_validated_as_a_whole() {
    let server = TestServer::start().await;
    let client = server.client().await;
    check_invalid_plan(&client, "plan.id", |plan| plan.id = "bad id".into()).await;
    check_invalid_plan(&client, "plan.name", |plan| plan.name = String::new()).await;
    check_invalid_plan(&client, "plan.hazard", |plan| plan.hazard = pb::Hazard::Unspecified.into()).await;
    check_invalid_plan(&client, "plan.levels", |plan| plan.levels.clear()).await;
    check_invalid_plan(&client, "plan.levels[3].level", |plan| plan.levels[3].level = pb::Level::Ii.into()).await;
    check_invalid_plan(&client, "plan.levels[0].level", |plan| plan.levels[0].level = pb::Level::Unspecified.into())
        .await;
    check_invalid_plan(&client, "plan.levels[1].teams[0].count", |plan| plan.levels[1].teams[0].count = 0).await;
    check_invalid_plan(&client, "plan.levels[1].teams[0].min_tier", |plan| plan.levels[1].teams[0].min_tier = 5).await;
    check_invalid_plan(&client, "plan.levels[1].teams[0].capability", |plan| {
        plan.levels[1].teams[0].capability = "Water Rescue".into()
    })
    .await;
    check_invalid_plan(&client, "plan.levels[1].teams[1]", |plan| {
        let again = plan.levels[1].teams[0].clone();
        plan.levels[1].teams.push(again);
    })
    .await;
    check_invalid_plan(&client, "plan.levels[2].supplies[0].quantity", |plan| plan.levels[2].supplies[0].quantity = -1)
        .await;
    check_invalid_plan(&client, "plan.levels[2].supplies[0].item_code", |plan| {
        plan.levels[2].supplies[0].item_code = "Sand bag".into()
    })
    .await;
    check_invalid_plan(&client, "plan.levels[0].tasks[0].title", |plan| plan.levels[0].tasks[0].title = String::new())
        .await;
    check_invalid_plan(&client, "plan.triggers[2].level", |plan| plan.triggers[2].level = pb::Level::Iv.into()).await;
    check_invalid_plan(&client, "plan.triggers[1].threshold", |plan| plan.triggers[1].threshold = f64::NAN).await;
    check_invalid_plan(&client, "plan.triggers[0].metric", |plan| plan.triggers[0].metric = "Water Level".into()).await;
    check_invalid_plan(&client, "plan.triggers[3].level", |plan| {
        plan.levels.truncate(3);
        plan.triggers.push(pb::Trigger {
            metric: "people_trapped".into(),
            threshold: 10.0,
            level: pb::Level::I.into(),
        });
        plan.triggers.truncate(2);
        plan.triggers.push(pb::Trigger { metric: "rain_mm".into(), threshold: 1.0, level: pb::Level::Iv.into() });
        plan.triggers.push(pb::Trigger { metric: "wind".into(), threshold: 1.0, level: pb::Level::I.into() });
    })
    .await;
    check_error(client.plans().put_plan(pb::PutPlanRequest::default()).await, Code::InvalidArgument, Some("plan"));
    let listed = client.plans().list_plans(pb::ListPlansRequest::default()).await.unwrap().into_inner();
    assert!(listed.plans.is_empty());
}

#[tokio::test]
async fn the_city_plans_import_after_the_city_and_again_change_nothing() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let read = |name: &str| {
        std::fs::read_to_string(format!("{}/../drills/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    };
    let mut imports = client.imports();
    imports
        .import(pb::ImportRequest { request_id: String::new(), name: "city.toml".into(), toml: read("city.toml") })
        .await
        .unwrap();
    let first = imports
        .import(pb::ImportRequest { request_id: String::new(), name: "plans.toml".into(), toml: read("plans.toml") })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.created.iter().filter(|created| created.starts_with("plan ")).count(), 3, "{first:?}");
    let again = imports
        .import(pb::ImportRequest { request_id: String::new(), name: "plans.toml".into(), toml: read("plans.toml") })
        .await
        .unwrap()
        .into_inner();
    assert!(again.created.is_empty() && again.changed.is_empty(), "{again:?}");
    let plans = client.plans().list_plans(pb::ListPlansRequest::default()).await.unwrap().into_inner().plans;
    let hazards: Vec<_> = plans.iter().map(|plan| (plan.id.as_str(), plan.hazard(), plan.levels.len())).collect();
    assert_eq!(
        hazards,
        vec![
            ("flood", pb::Hazard::Flood, 4),
            ("hazmat-park", pb::Hazard::Hazmat, 4),
            ("power-outage", pb::Hazard::PowerOutage, 4)
        ]
    );
    assert!(plans.iter().all(|plan| !plan.triggers.is_empty()));
}

#[tokio::test]
async fn an_inconsistent_plan_in_a_file_names_its_line() {
    let server = TestServer::start().await;
    let text = r#"
[[plan]]
id = "flood"
name = "Flood"
hazard = "FLOOD"
  [[plan.level]]
  level = "II"
  teams = [{ capability = "water_rescue", min_tier = 2, count = 4 }]
  [[plan.level]]
  level = "I"
  teams = [{ capability = "water_rescue", min_tier = 2, count = 8 }]
  [[plan.trigger]]
  metric = "water_level_m"
  threshold = 38.0
  level = "I"
  [[plan.trigger]]
  metric = "water_level_m"
  threshold = 39.0
  level = "II"
"#;
    let result = server
        .client()
        .await
        .imports()
        .import(pb::ImportRequest { request_id: String::new(), name: "plans.toml".into(), toml: text.into() })
        .await;
    let status = check_error(result, Code::InvalidArgument, None);
    assert!(status.message().starts_with("plans.toml:2: plan[0].trigger[1].level"), "{}", status.message());
}
