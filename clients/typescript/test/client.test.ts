// Drives a real apiv4 server (bin/apiv4, or APIV4_BIN) on a fresh SQLite
// file through the generated client, and checks the answers.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApiv4Client, followEvents, type Event } from "../src/client.js";

const bin = process.env["APIV4_BIN"] ?? "bin/apiv4";
let dir = "";
let server: ChildProcess | undefined;
let baseUrl = "";
let token = "";

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "apiv4-ts-"));
  const database = "sqlite:" + join(dir, "apiv4.db");
  const proc = spawn(bin, ["serve", "--addr", "127.0.0.1:0", "--database", database,
    "--sim-duration", "200ms"], { stdio: ["ignore", "ignore", "pipe"] });
  server = proc;
  baseUrl = await new Promise<string>((resolve, reject) => {
    let log = "";
    const timer = setTimeout(() => reject(new Error("apiv4 serve did not listen:\n" + log)), 30_000);
    proc.stderr?.on("data", (chunk: Buffer) => {
      log += chunk.toString();
      const m = /msg=listening addr=(\S+)/.exec(log);
      if (m?.[1] !== undefined) {
        clearTimeout(timer);
        resolve("http://" + m[1]);
      }
    });
    proc.on("exit", (code) => reject(new Error(`apiv4 serve exited ${code}:\n${log}`)));
  });
  // As an operator would: serve creates and migrates the database, then
  // token create adds a user to it.
  token = execFileSync(bin, ["token", "create", "--database", database, "--username", "ts"])
    .toString()
    .trim();
});

after(() => {
  server?.kill("SIGTERM");
  rmSync(dir, { recursive: true, force: true });
});

test("an empty account lists no events", async () => {
  const api = createApiv4Client({ baseUrl, token });
  const { data, error, response } = await api.GET("/account/events", {
    params: { query: { page_size: 25 } },
  });
  assert.equal(response.status, 200);
  assert.equal(error, undefined);
  assert.deepEqual(data, { data: [], page: 1, pages: 1, results: 0 });
});

test("a created Linode is readable and has its event", async () => {
  const api = createApiv4Client({ baseUrl, token });
  const created = await api.POST("/linode/instances", {
    body: { region: "us-east", type: "g6-nanode-1", label: "ts-one", image: "linode/debian12",
      root_pass: "Ts-client-pass1!", booted: false },
  });
  assert.equal(created.response.status, 200);
  const linode = created.data!;
  assert.equal(linode.label, "ts-one");
  assert.equal(linode.status, "provisioning");

  const got = await api.GET("/linode/instances/{linodeId}", {
    params: { path: { linodeId: linode.id } },
  });
  assert.equal(got.data?.id, linode.id);

  const events = await api.GET("/account/events", {
    params: { header: { "X-Filter": JSON.stringify({ "entity.id": linode.id }) } },
  });
  assert.deepEqual(events.data?.data.map((e) => e.action), ["linode_create"]);
});

test("an unknown Linode is answered in the Linode error shape", async () => {
  const api = createApiv4Client({ baseUrl, token });
  const { error, response } = await api.GET("/linode/instances/{linodeId}", {
    params: { path: { linodeId: 2147483000 } },
  });
  assert.equal(response.status, 404);
  assert.deepEqual(error, { errors: [{ reason: "Not found" }] });
});

test("a page that did not change is answered 304", async () => {
  // A filter no Linode matches keeps the page the same while the other
  // tests' jobs run.
  const api = createApiv4Client({ baseUrl, token });
  const filter = JSON.stringify({ label: "no-such-linode" });
  const first = await api.GET("/linode/instances", { params: { header: { "X-Filter": filter } } });
  const etag = first.response.headers.get("ETag");
  assert.ok(etag, "the list has an ETag");
  const again = await api.GET("/linode/instances", {
    params: { header: { "X-Filter": filter, "If-None-Match": etag } },
  });
  assert.equal(again.response.status, 304);
  assert.equal(again.data, undefined);

  const other = await api.GET("/linode/instances", {
    params: { header: { "If-None-Match": etag } },
  });
  assert.equal(other.response.status, 200, "another query's page has another tag");
});

test("followEvents pushes a change as it happens, and resumes after a position", async () => {
  const api = createApiv4Client({ baseUrl, token });
  const created = await api.POST("/linode/instances", {
    body: { region: "us-east", type: "g6-nanode-1", label: "ts-two", booted: false },
  });
  const id = created.data!.id;
  const filter = JSON.stringify({ "entity.id": id, action: "linode_update" });

  const stop = new AbortController();
  let opened: (position: number) => void = () => undefined;
  const open = new Promise<number>((resolve) => (opened = resolve));
  const stream = followEvents({ baseUrl, token, filter, signal: stop.signal, onOpen: opened });
  const first = stream.next(); // connects
  const start = await open;
  const put = await api.PUT("/linode/instances/{linodeId}", {
    params: { path: { linodeId: id } },
    body: { tags: ["pushed"] },
  });
  assert.equal(put.response.status, 200);
  const got = await first;
  assert.equal(got.done, false);
  const pushed = got.value as { position: number; event: Event };
  assert.equal(pushed.event.action, "linode_update");
  assert.equal(pushed.event.entity?.id, id);
  assert.ok(pushed.position > start);
  stop.abort();
  await stream.return(undefined).catch(() => undefined);

  // A second update while no one follows comes on resuming.
  await api.PUT("/linode/instances/{linodeId}", {
    params: { path: { linodeId: id } },
    body: { tags: ["missed"] },
  });
  const resume = new AbortController();
  const resumed = followEvents({ baseUrl, token, filter, after: pushed.position, signal: resume.signal });
  const next = await resumed.next();
  assert.equal(next.done, false);
  assert.ok((next.value as { position: number }).position > pushed.position);
  resume.abort();
  await resumed.return(undefined).catch(() => undefined);
});
