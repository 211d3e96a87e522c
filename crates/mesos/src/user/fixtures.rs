//! Fixture files shared by the user-resolution tests.

use super::entries::PasswdEntry;

pub(super) const PASSWD: &str = "\
# comment:x:7:7::/:/bin/sh
root:x:0:0:root:/root:/bin/bash

   \t
+nisuser:x:800:800::/:/bin/sh
-banned:x:801:801::/:/bin/sh
+
broken
nouid:x::100::/:/bin/sh
baduid:x:abc:100::/:/bin/sh
negative:x:-1:100::/:/bin/sh
minusone:x:4294967295:100::/:/bin/sh
:x:900:900::/:/bin/sh
alice:x:1000:1000:Alice:/home/alice:/bin/bash
short:x:1001:1001
  indented:x:1002:1002::/:/bin/sh
1234:x:1003:1003::/:/bin/sh
alice:x:2000:2000:second alice:/:/bin/sh
";

pub(super) fn entry(name: &str, uid: u32, gid: u32) -> PasswdEntry {
    PasswdEntry {
        name: name.to_owned(),
        uid,
        gid,
    }
}

pub(super) const GROUP: &str = "\
# wheel:x:10:alice
root:x:0:
wheel:x:10:root,alice
users:x:100:bob, alice ,carol
alice:x:1000:
dup:x:10:alice
+nisgroup:x:500:alice
-nisgroup:x:501:alice
nomembers:x:600
bad:x:abc:alice
minusone:x:4294967295:alice
:x:700:alice
alicia:x:800:alicia,malice,alice2
";
