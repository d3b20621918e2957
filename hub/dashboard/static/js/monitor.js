// The monitor-mode connection to /hubs/voice (contract section 3) and what it knows about live calls.
//
// One connection watches the tenant: SubscribeAll brings lifecycle events, and every live conversation
// gets its own Subscribe (transcript + partials, AudioLevel; audio while listening). Each conversation
// keeps the highest `seq` it has applied: events at or below it are duplicates and dropped, and after a
// reconnect every conversation is re-subscribed with `fromSeq` so nothing is missed or shown twice.

const signalR = window.signalR;
const RETRY_MS = [0, 1000, 1000, 2000, 2000, 3000, 5000]; // then every 5 s, forever (a hub restart may take a while)
const KEEP_ENDED = 50;

class PageLogger {
  log(level, message) {
    if (level < signalR.LogLevel.Warning) return;
    // Connection trouble is shown in the page; the console gets a warning without any token in it.
    console.warn(`[hub] ${String(message).replace(/access_token=[^&\s'"]+/g, "access_token=…")}`);
  }
}

function retryDelay(context) {
  const base = RETRY_MS[Math.min(context.previousRetryCount, RETRY_MS.length - 1)];
  return base * (0.8 + 0.4 * Math.random()); // jitter: many dashboards do not come back in lockstep
}

export class Monitor {
  constructor(auth) {
    this.auth = auth;
    this.state = "disconnected";
    this.conversations = new Map();
    this.listeners = new Map();
    this.audio = null; // {id, audio, sampleRate} while listening
    this.pinned = new Set(); // conversations kept subscribed after they end (the open view)
    this.connection = this.build();
    this.stopped = false;
    this.restartTimer = 0;
  }

  on(name, fn) {
    if (!this.listeners.has(name)) this.listeners.set(name, new Set());
    this.listeners.get(name).add(fn);
    return () => this.listeners.get(name).delete(fn);
  }

  emit(name, ...args) {
    for (const fn of this.listeners.get(name) || []) {
      try {
        fn(...args);
      } catch (error) {
        console.warn(`[dashboard] ${name} handler failed:`, error);
      }
    }
  }

  build() {
    const connection = new signalR.HubConnectionBuilder()
      .withUrl("/hubs/voice", { accessTokenFactory: () => this.auth.accessToken() })
      .withHubProtocol(new signalR.protocols.msgpack.MessagePackHubProtocol())
      .withAutomaticReconnect({ nextRetryDelayInMilliseconds: retryDelay })
      .configureLogging(new PageLogger())
      .build();
    const on = (target, fn) => connection.on(target, (payload) => fn.call(this, payload || {}));
    on("ConversationStarted", this.onConversation);
    on("ConversationUpdated", this.onConversation);
    on("ConversationEnded", this.onEnded);
    on("TranscriptTurn", this.onTurn);
    on("Dtmf", (e) => this.onItem("dtmf", e));
    on("Control", (e) => this.onItem("control", e));
    on("AudioLevel", this.onLevel);
    on("AudioFrame", (frame) => this.emit("audio", frame));
    on("Presence", this.onPresence);
    on("Gap", this.onGap);
    connection.onreconnecting(() => this.setState("reconnecting"));
    connection.onreconnected(() => this.resume().catch((error) => this.emit("error", error)));
    connection.onclose(() => {
      this.setState("disconnected");
      if (!this.stopped) this.restartTimer = setTimeout(() => this.start().catch(() => {}), 5000);
    });
    return connection;
  }

  get connectionId() {
    return this.connection.connectionId;
  }

  setState(state) {
    this.state = state;
    this.emit("state", state);
  }

  async start() {
    this.stopped = false;
    clearTimeout(this.restartTimer);
    this.setState("connecting");
    try {
      await this.connection.start();
    } catch (error) {
      if (/\b403\b/.test(String(error && error.message))) {
        // The key lacks monitor:read: retrying cannot help; the history still works.
        this.stopped = true;
        this.setState("forbidden");
        throw new Error("This API key lacks the monitor:read scope: live calls are not available (the history is).");
      }
      this.setState("disconnected");
      if (/\b401\b/.test(String(error && error.message))) await this.auth.refresh().catch(() => {});
      if (!this.stopped) this.restartTimer = setTimeout(() => this.start().catch(() => {}), 5000);
      throw error;
    }
    await this.resume();
  }

  async stop() {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    await this.connection.stop();
  }

  /** After (re)connecting: follow the tenant again and catch every known conversation up from its seq. */
  async resume() {
    this.setState("syncing");
    const known = [...this.conversations.values()].filter((e) => !e.ended || this.pinned.has(e.id));
    let current;
    try {
      current = await this.connection.invoke("SubscribeAll", null, { transcript: false });
    } catch (error) {
      // Still connected but refused (e.g. a broker outage on the hub): try again shortly.
      if (this.connection.state === signalR.HubConnectionState.Connected && !this.stopped) {
        this.restartTimer = setTimeout(() => this.resume().catch(() => {}), 2000);
      }
      throw error;
    }
    const live = new Set((current || []).map((c) => c.id));
    for (const conversation of current || []) this.upsert(conversation);  // new ones subscribe themselves
    await Promise.allSettled(known.map((entry) => this.subscribe(entry.id, !live.has(entry.id))));
    this.setState("connected");
  }

  entry(id) {
    let entry = this.conversations.get(id);
    if (!entry) {
      entry = { id, conversation: { id }, lastSeq: 0, turns: new Map(), items: [], levels: null, watchers: [],
                ended: false, subscribed: false, snapshotAt: 0 };
      this.conversations.set(id, entry);
    }
    return entry;
  }

  accept(entry, seq) {
    if (typeof seq !== "number") return true;
    if (seq <= entry.lastSeq) return false;
    entry.lastSeq = seq;
    return true;
  }

  upsert(conversation, seq) {
    const id = conversation.id || conversation.conversationId;
    const isNew = !this.conversations.has(id);
    const entry = this.entry(id);
    if (seq !== undefined && !this.accept(entry, seq)) return entry;
    entry.conversation = { ...entry.conversation, ...conversation, id };
    entry.receivedAt = performance.now();
    if (conversation.status && conversation.status !== "in_progress") entry.ended = true;
    this.emit(isNew ? "added" : "updated", entry);
    if (isNew && !entry.ended) this.subscribe(id).catch(() => {});
    return entry;
  }

  async subscribe(id, mayBeGone = false) {
    const entry = this.entry(id);
    const options = { transcript: true, partials: true, ...this.audioOptions(id) };
    if (entry.lastSeq > 0) options.fromSeq = entry.lastSeq;
    try {
      const snapshot = await this.connection.invoke("Subscribe", id, options);
      entry.subscribed = true;
      this.applySnapshot(entry, snapshot || {});
    } catch (error) {
      if (/not found/i.test(String(error && error.message))) this.forget(id);
      else if (!mayBeGone) this.emit("error", error);
    }
  }

  applySnapshot(entry, snapshot) {
    if (snapshot.conversation) {
      entry.conversation = { ...entry.conversation, ...snapshot.conversation };
      entry.receivedAt = performance.now();
      if (snapshot.conversation.status && snapshot.conversation.status !== "in_progress") entry.ended = true;
    }
    for (const turn of [...(snapshot.transcript || []), ...(snapshot.partials || [])]) {
      const known = entry.turns.get(turn.turnId);
      if (!known || (known.seq || 0) < (turn.seq || 0)) entry.turns.set(turn.turnId, turn);
    }
    if (typeof snapshot.seq === "number" && snapshot.seq > entry.lastSeq) entry.lastSeq = snapshot.seq;
    entry.snapshotAt = performance.now();
    this.emit("snapshot", entry);
    if (entry.ended) this.emit("ended", entry);
  }

  forget(id) {
    const entry = this.conversations.get(id);
    if (!entry) return;
    this.conversations.delete(id);
    this.emit("removed", entry);
  }

  // --- events -----------------------------------------------------------------------------------
  onConversation(payload) {
    this.upsert(payload, payload.seq);
  }

  onEnded(payload) {
    const entry = this.entry(payload.conversationId);
    if (!this.accept(entry, payload.seq)) return;
    entry.ended = true;
    entry.conversation = { ...entry.conversation, status: payload.status, endedAt: payload.endedAt,
                           durationSeconds: payload.durationSeconds, endReason: payload.reason };
    this.emit("ended", entry);
    if (!this.pinned.has(entry.id)) this.release(entry.id);
    this.trimEnded();
  }

  release(id) {
    const entry = this.conversations.get(id);
    if (entry && entry.subscribed && this.connection.state === signalR.HubConnectionState.Connected) {
      entry.subscribed = false;
      this.connection.invoke("Unsubscribe", id).catch(() => {});
    }
  }

  trimEnded() {
    const ended = [...this.conversations.values()].filter((e) => e.ended && !this.pinned.has(e.id));
    for (const entry of ended.slice(0, Math.max(0, ended.length - KEEP_ENDED))) this.conversations.delete(entry.id);
  }

  onTurn(turn) {
    const entry = this.entry(turn.conversationId);
    if (!this.accept(entry, turn.seq)) return;
    entry.turns.set(turn.turnId, turn);
    this.emit("turn", entry, turn);
  }

  onItem(kind, payload) {
    const entry = this.entry(payload.conversationId);
    if (!this.accept(entry, payload.seq)) return;
    const item = { kind, ...payload };
    entry.items.push(item);
    this.emit("item", entry, item);
  }

  onLevel(payload) {
    const entry = this.conversations.get(payload.conversationId);
    if (!entry) return;
    entry.levels = { caller: payload.caller, agent: payload.agent, at: performance.now() };
    this.emit("level", entry);
  }

  onPresence(payload) {
    const entry = this.conversations.get(payload.conversationId);
    if (!entry) return;
    entry.watchers = payload.watchers || [];
    this.emit("presence", entry);
  }

  onGap(gap) {
    if (gap.track || gap.fromSeq > gap.toSeq) {
      this.emit("audiogap", gap);
      return;
    }
    // Transcript or lifecycle events were lost: catch up from the last seq applied.
    if (this.conversations.has(gap.conversationId)) this.subscribe(gap.conversationId).catch(() => {});
  }

  // --- listening and supervisor actions ------------------------------------------------------------
  audioOptions(id) {
    if (!this.audio || this.audio.id !== id) return { audio: "none" };
    return { audio: this.audio.audio, encoding: "pcm_s16le", sampleRate: this.audio.sampleRate };
  }

  async listen(id, audio, sampleRate) {
    const previous = this.audio;
    this.audio = { id, audio, sampleRate };
    if (previous && previous.id !== id) await this.connection.invoke("UpdateSubscription", previous.id, { audio: "none" });
    await this.connection.invoke("UpdateSubscription", id, this.audioOptions(id));
  }

  async stopListening() {
    const previous = this.audio;
    this.audio = null;
    if (previous && this.connection.state === signalR.HubConnectionState.Connected) {
      await this.connection.invoke("UpdateSubscription", previous.id, { audio: "none" }).catch(() => {});
    }
  }

  presence(id) {
    return this.connection.invoke("GetPresence", id);
  }

  invoke(method, ...args) {
    return this.connection.invoke(method, ...args);
  }
}
