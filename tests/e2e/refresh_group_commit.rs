//! Refresh-token rotations share commits on PostgreSQL too (`store::rotation_batch`): two nodes
//! on one store, each gathering its own rotations, race on the same chains and on one token.

use crate::cluster::Cluster;
use crate::oauth::{EMAIL, PASSWORD, refresh_races, third_party_app};

#[tokio::test(flavor = "multi_thread")]
async fn on_postgres_two_nodes_rotate_each_chain_once_and_a_raced_token_wins_at_most_once() {
    let cluster = Cluster::start("1s").await;
    let (a, b) = (&cluster.a, &cluster.b);
    a.add_user(EMAIL, "Ann Example", "wiki", "ROLE_USER", PASSWORD);
    let (client_id, secret) = third_party_app(a);
    refresh_races(&[a, b], &client_id, &secret).await;
}
