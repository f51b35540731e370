// Writes a small Apache ZooKeeper data directory for zoocore's import test and dumps what
// clients see: every znode's path, data, ACL and raw Stat, the open session and the last zxid.
// Usage: java -cp zookeeper.jar:zookeeper-jute.jar:slf4j-api.jar:. MakeData host:port out.txt
import java.io.*;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.*;
import java.util.concurrent.CountDownLatch;
import org.apache.zookeeper.*;
import org.apache.zookeeper.data.*;
import org.apache.zookeeper.server.auth.DigestAuthenticationProvider;

public class MakeData {
    static ZooKeeper connect(String addr, int timeout) throws Exception {
        CountDownLatch up = new CountDownLatch(1);
        ZooKeeper zk = new ZooKeeper(addr, timeout, e -> {
            if (e.getState() == Watcher.Event.KeeperState.SyncConnected) up.countDown();
        });
        up.await();
        return zk;
    }

    static String hex(byte[] b) {
        if (b == null) return "-";
        StringBuilder s = new StringBuilder();
        for (byte x : b) s.append(String.format("%02x", x));
        return s.length() == 0 ? "-" : s.toString();
    }

    public static void main(String[] args) throws Exception {
        String addr = args[0];
        ZooKeeper a = connect(addr, 30000);
        a.addAuthInfo("digest", "alice:secret".getBytes(StandardCharsets.UTF_8));
        List<ACL> open = ZooDefs.Ids.OPEN_ACL_UNSAFE;
        a.create("/app", "hello".getBytes(), open, CreateMode.PERSISTENT);
        a.create("/app/cfg", "v1".getBytes(), open, CreateMode.PERSISTENT);
        for (int i = 0; i < 3; i++) {
            a.setData("/app/cfg", ("v" + (i + 2)).getBytes(), -1);
        }
        for (int i = 0; i < 4; i++) {
            a.create("/app/seq-", ("s" + i).getBytes(), open, CreateMode.PERSISTENT_SEQUENTIAL);
        }
        a.create("/app/eph", "mine".getBytes(), open, CreateMode.EPHEMERAL);
        a.create("/app/eseq-", new byte[0], open, CreateMode.EPHEMERAL_SEQUENTIAL);
        a.create("/cont", null, open, CreateMode.CONTAINER);
        a.create("/cont/c1", "in container".getBytes(), open, CreateMode.PERSISTENT);
        a.create("/ttl", "short lived".getBytes(), open, CreateMode.PERSISTENT_WITH_TTL, null, 3600000L);
        List<ACL> secure = new ArrayList<>();
        secure.add(new ACL(ZooDefs.Perms.ALL, new Id("digest",
            DigestAuthenticationProvider.generateDigest("alice:secret"))));
        secure.add(new ACL(ZooDefs.Perms.READ, ZooDefs.Ids.ANYONE_ID_UNSAFE));
        a.create("/secure", new byte[] {0, 1, 2, (byte) 0xff}, secure, CreateMode.PERSISTENT);
        a.setACL("/app/cfg", secure, -1);
        a.setACL("/app/cfg", open, 1);
        a.delete("/app/seq-0000000001", -1);
        // A session that comes and goes: its ephemeral goes with it.
        ZooKeeper b = connect(addr, 10000);
        b.create("/app/b-eph", "b".getBytes(), open, CreateMode.EPHEMERAL);
        b.close();
        for (int i = 0; i < 12; i++) {
            a.create("/bulk" + i, ("n" + i).getBytes(), open, CreateMode.PERSISTENT);
        }
        for (int i = 0; i < 12; i += 2) {
            a.delete("/bulk" + i, -1);
        }
        // Multi: ok.
        a.multi(Arrays.asList(
            Op.create("/m1", "multi".getBytes(), open, CreateMode.PERSISTENT),
            Op.setData("/app", "hello again".getBytes(), -1),
            Op.check("/app/cfg", 3),
            Op.delete("/app/seq-0000000002", -1)));
        // Multi that fails: logged as an error multi, changes nothing.
        try {
            a.multi(Arrays.asList(
                Op.create("/m2", "x".getBytes(), open, CreateMode.PERSISTENT),
                Op.delete("/nonexistent", -1)));
        } catch (KeeperException e) {
            System.err.println("expected failed multi: " + e);
        }
        // A failed plain create is not logged (prep rejects it).
        try {
            a.create("/app", null, open, CreateMode.PERSISTENT);
        } catch (KeeperException.NodeExistsException e) {
            // expected
        }
        a.create("/cont/c2", null, open, CreateMode.PERSISTENT);
        a.delete("/cont/c1", -1);
        a.setData("/secure", "secret data".getBytes(), 0);
        a.create("/tail", "after snapshot".getBytes(), open, CreateMode.PERSISTENT);
        a.create("/tail/x", null, open, CreateMode.EPHEMERAL);
        a.setData("/tail", "last".getBytes(), -1);

        try (PrintWriter out = new PrintWriter(new FileWriter(args[1]))) {
            out.println("# zoocore import test expectations, dumped by MakeData.java from Apache ZooKeeper 3.8");
            out.println("# session <id hex> <timeout ms>");
            out.println("# last_zxid <hex>");
            out.println("# node <path> <data hex or -> <acl perms:scheme:id,...> czxid mzxid pzxid ctime mtime version cversion aversion ephemeralOwner dataLength numChildren");
            out.printf("session %x %d%n", a.getSessionId(), a.getSessionTimeout());
            out.printf("last_zxid %s%n", lastZxid(addr));
            Deque<String> todo = new ArrayDeque<>();
            todo.add("/");
            List<String> lines = new ArrayList<>();
            while (!todo.isEmpty()) {
                String p = todo.poll();
                Stat s = new Stat();
                byte[] data = a.getData(p, false, s);
                Stat s2 = new Stat();
                List<ACL> acl = a.getACL(p, s2);
                StringBuilder as = new StringBuilder();
                for (ACL x : acl) {
                    if (as.length() > 0) as.append(',');
                    as.append(x.getPerms()).append(':').append(x.getId().getScheme()).append(':').append(x.getId().getId());
                }
                lines.add(String.format("node %s %s %s %d %d %d %d %d %d %d %d %d %d %d", p, hex(data), as,
                    s.getCzxid(), s.getMzxid(), s.getPzxid(), s.getCtime(), s.getMtime(), s.getVersion(),
                    s.getCversion(), s.getAversion(), s.getEphemeralOwner(), s.getDataLength(), s.getNumChildren()));
                for (String c : a.getChildren(p, false)) {
                    todo.add(p.equals("/") ? "/" + c : p + "/" + c);
                }
            }
            Collections.sort(lines);
            for (String l : lines) out.println(l);
        }
        System.out.println("DONE; session stays open; kill the server now");
        Thread.sleep(600000);
    }

    static String lastZxid(String addr) throws Exception {
        String[] hp = addr.split(":");
        try (Socket s = new Socket(hp[0], Integer.parseInt(hp[1]))) {
            s.getOutputStream().write("srvr".getBytes());
            BufferedReader r = new BufferedReader(new InputStreamReader(s.getInputStream()));
            for (String l; (l = r.readLine()) != null; ) {
                if (l.startsWith("Zxid: 0x")) return l.substring(8);
            }
        }
        throw new IOException("no Zxid in srvr");
    }
}
