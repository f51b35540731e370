//! Proves access control matches ZooKeeper: getACL/setACL with aversion checks, digest
//! authentication and `auth`-scheme ACLs, NoAuth denials per permission bit, InvalidACL for
//! `auth` without credentials, the super digest bypassing every ACL, and whoAmI (present in
//! Apache 3.8 too: ZOOKEEPER-3969 shipped in 3.7.0).

use zoocore_e2e::*;
use zookeeper_client::{Acl, Acls, AuthId, AuthUser, CreateMode, Error, Permission};

const ALICE: &[u8] = b"alice:alicepass";
/// base64(sha1("alice:alicepass")), as ZooKeeper shows digest ids.
const ALICE_ID: &str = "alice:k8B+4BwmA/Si3Gj3ZYeOl9g4mtE=";

#[test]
fn get_and_set_acl_track_aversion() {
    run(async {
        let server = Server::start_default();
        let zk = connect(&server).await;
        zk.create("/a", b"", &persistent()).await.unwrap();
        let (acls, stat) = zk.get_acl("/a").await.unwrap();
        assert_eq!(acls, vec![Acl::new(Permission::ALL, AuthId::anyone())]);
        assert_eq!(stat.aversion, 0);

        let read_only = Acls::anyone_read();
        assert_eq!(
            zk.set_acl("/a", &read_only, Some(3)).await.unwrap_err(),
            Error::BadVersion
        );
        let stat = zk.set_acl("/a", &read_only, Some(0)).await.unwrap();
        assert_eq!(stat.aversion, 1, "setACL bumps aversion");
        assert_eq!(stat.version, 0, "setACL leaves version");
        let (acls, _) = zk.get_acl("/a").await.unwrap();
        assert_eq!(acls, vec![Acl::new(Permission::READ, AuthId::anyone())]);

        // READ only: reads pass, writes and creates are denied, delete needs the parent's DELETE.
        zk.get_data("/a").await.unwrap();
        assert_eq!(
            zk.set_data("/a", b"x", None).await.unwrap_err(),
            Error::NoAuth
        );
        assert_eq!(
            zk.create("/a/kid", b"", &persistent()).await.unwrap_err(),
            Error::NoAuth
        );
        assert_eq!(
            zk.set_acl("/a", &Acls::anyone_all(), None)
                .await
                .unwrap_err(),
            Error::NoAuth
        );
        zk.delete("/a", None).await.unwrap();
        assert_eq!(zk.get_acl("/missing").await.unwrap_err(), Error::NoNode);
    });
}

#[test]
fn digest_auth_grants_and_denies() {
    run(async {
        let server = Server::start_default();
        let alice = connect(&server).await;
        // `auth` scheme ACLs need an authenticated identity.
        let creator = CreateMode::Persistent.with_acls(Acls::creator_all());
        assert_eq!(
            alice.create("/secret", b"s", &creator).await.unwrap_err(),
            Error::InvalidAcl
        );
        alice.auth("digest", ALICE).await.unwrap();
        alice.create("/secret", b"s", &creator).await.unwrap();
        let (acls, _) = alice.get_acl("/secret").await.unwrap();
        assert_eq!(
            acls,
            vec![Acl::new(Permission::ALL, AuthId::new("digest", ALICE_ID))],
            "auth expands to digest id"
        );
        assert_eq!(alice.get_data("/secret").await.unwrap().0, b"s");

        let anonymous = connect(&server).await;
        assert_eq!(
            anonymous.get_data("/secret").await.unwrap_err(),
            Error::NoAuth
        );
        assert_eq!(
            anonymous.set_data("/secret", b"x", None).await.unwrap_err(),
            Error::NoAuth
        );
        assert_eq!(
            anonymous.list_children("/secret").await.unwrap_err(),
            Error::NoAuth
        );
        // exists needs no permission; getACL needs READ or ADMIN (ZOOKEEPER-1392).
        assert!(anonymous.check_stat("/secret").await.unwrap().is_some());
        assert_eq!(
            anonymous.get_acl("/secret").await.unwrap_err(),
            Error::NoAuth
        );

        let mallory = connect(&server).await;
        mallory.auth("digest", b"alice:wrong").await.unwrap();
        assert_eq!(
            mallory.get_data("/secret").await.unwrap_err(),
            Error::NoAuth,
            "wrong password"
        );

        let alice2 = connect(&server).await;
        alice2.auth("digest", ALICE).await.unwrap();
        alice2.set_data("/secret", b"t", None).await.unwrap();
    });
}

#[test]
fn super_digest_bypasses_acls() {
    run(async {
        let options = Options {
            super_digest: Some(SUPER_DIGEST.to_string()),
            ..Options::default()
        };
        let server = Server::start_with(Target::from_env(), options);
        let alice = connect(&server).await;
        alice.auth("digest", ALICE).await.unwrap();
        alice
            .create(
                "/locked",
                b"l",
                &CreateMode::Persistent.with_acls(Acls::creator_all()),
            )
            .await
            .unwrap();
        let sealed_acl = [Acl::new_const(Permission::READ, "digest", "x:y")];
        let nobody = CreateMode::Persistent.with_acls(Acls::new(&sealed_acl));
        alice.create("/sealed", b"", &nobody).await.unwrap();

        let root = connect(&server).await;
        assert_eq!(root.get_data("/locked").await.unwrap_err(), Error::NoAuth);
        root.auth("digest", SUPER_AUTH).await.unwrap();
        assert_eq!(root.get_data("/locked").await.unwrap().0, b"l");
        root.set_data("/sealed", b"forced", None).await.unwrap();
        root.create("/sealed/kid", b"", &persistent())
            .await
            .unwrap();
        root.delete("/sealed/kid", None).await.unwrap();
        root.set_acl("/locked", &Acls::anyone_all(), None)
            .await
            .unwrap();
        connect(&server).await.get_data("/locked").await.unwrap();
    });
}

#[test]
fn who_am_i_lists_identities() {
    run(async {
        let server = Server::start_default();
        let zk = connect(&server).await;
        let users = zk.list_auth_users().await.unwrap();
        assert_eq!(
            users,
            vec![AuthUser::new("ip", "127.0.0.1")],
            "unauthenticated: ip identity"
        );
        zk.auth("digest", ALICE).await.unwrap();
        let mut users = zk.list_auth_users().await.unwrap();
        users.sort_by(|a, b| a.scheme().cmp(b.scheme()));
        assert_eq!(
            users,
            vec![
                AuthUser::new("digest", "alice"),
                AuthUser::new("ip", "127.0.0.1")
            ]
        );
    });
}
