// otpbot demo: the chat page. It shows what the fake Telegram holds, as the
// server's event stream tells it, and turns what the reader does into
// requests: a message or a button press becomes an update for the bot, a
// sample button a signed push to otpbot's webhook.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const S = {
    setup: null,
    chats: new Map(), // id → {id, title, about, private, users}
    order: [],
    msgs: new Map(), // chat id → Map(message id → message)
    unread: new Map(),
    as: new Map(), // chat id → user id the reader writes as
    current: 0,
    live: false, // the snapshot was received: what comes now is news
  };

  async function api(path, body) {
    const r = await fetch("/demo/api/" + path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const j = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(j.error || r.statusText);
    return j;
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  let toastTimer = 0;
  function toast(text) {
    const t = $("toast");
    t.textContent = text;
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, 2600);
  }

  const userName = (id) => (S.setup.users.find((u) => u.id === id) || { name: "User " + id }).name;
  const chatMsgs = (id) => {
    if (!S.msgs.has(id)) S.msgs.set(id, new Map());
    return S.msgs.get(id);
  };
  const currentUser = () => Number($("as").value);
  const phone = () => !window.matchMedia("(min-width: 900px)").matches;

  // --- chats ---

  function renderChats() {
    const nav = $("chats");
    nav.replaceChildren(...S.order.map((id) => {
      const c = S.chats.get(id);
      const b = el("button", "chat-tab", c.title);
      b.type = "button";
      b.setAttribute("aria-current", String(id === S.current));
      const n = S.unread.get(id) || 0;
      if (n > 0) b.append(el("span", "badge", String(n)));
      b.addEventListener("click", () => select(id));
      return b;
    }));
  }

  function select(id) {
    if (!S.chats.has(id)) return;
    S.current = id;
    S.unread.delete(id);
    const c = S.chats.get(id);
    $("chatTitle").textContent = c.title;
    $("chatAbout").textContent = c.about || "";
    const as = $("as");
    as.replaceChildren(...c.users.map((u) => {
      const o = el("option", "", userName(u));
      o.value = String(u);
      return o;
    }));
    as.value = String(S.as.get(id) || c.users[0] || "");
    as.disabled = c.users.length < 2;
    renderChats();
    renderMessages();
  }

  // --- messages ---

  function renderMessages() {
    const box = $("messages");
    const list = [...chatMsgs(S.current).values()].sort((a, b) => a.id - b.id);
    if (list.length === 0) {
      box.replaceChildren(el("p", "empty",
        "Nothing here yet. Open “Send a push” and send a 3DS_OTP for the card linked here, " +
        "or type /help below."));
      return;
    }
    box.replaceChildren(...list.map(messageEl));
    box.scrollTop = box.scrollHeight;
  }

  function messageEl(m) {
    const chat = S.chats.get(m.chat);
    const wrap = el("div", m.from ? "msg mine" : "msg");
    wrap.dataset.id = String(m.id);
    const bubble = el("div", "bubble");
    if (chat && !chat.private) bubble.append(el("div", "sender", m.name));
    const body = el("div", "text");
    body.innerHTML = m.html; // built by the server from escaped text and known tags only
    bubble.append(body);
    const at = new Date(m.at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
    bubble.append(el("div", "meta", (m.edited ? "edited · " : "") + at));
    wrap.append(bubble);
    if (m.buttons && m.buttons.length) {
      const kb = el("div", "keyboard");
      for (const row of m.buttons) {
        const r = el("div", "kb-row");
        for (const b of row) {
          const btn = el("button", "", b.text);
          btn.type = "button";
          btn.addEventListener("click", () => pressed(m, b, btn));
          r.append(btn);
        }
        kb.append(r);
      }
      wrap.append(kb);
    }
    return wrap;
  }

  function upsert(m) {
    const msgs = chatMsgs(m.chat);
    const isNew = !msgs.has(m.id);
    msgs.set(m.id, m);
    if (m.chat !== S.current) {
      if (isNew && S.live) {
        S.unread.set(m.chat, (S.unread.get(m.chat) || 0) + 1);
        renderChats();
      }
      return;
    }
    const box = $("messages");
    const atEnd = box.scrollHeight - box.scrollTop - box.clientHeight < 60;
    const node = messageEl(m);
    const old = box.querySelector(`.msg[data-id="${m.id}"]`);
    if (old) {
      old.replaceWith(node);
    } else {
      box.querySelector(".empty")?.remove();
      const after = [...box.querySelectorAll(".msg")].find((n) => Number(n.dataset.id) > m.id);
      box.insertBefore(node, after || null);
      if (S.live) node.classList.add("flash");
    }
    if (atEnd || (isNew && !m.from)) box.scrollTop = box.scrollHeight;
  }

  function removeMessage(chat, id) {
    chatMsgs(chat).delete(id);
    if (chat === S.current) {
      $("messages").querySelector(`.msg[data-id="${id}"]`)?.remove();
      if (chatMsgs(chat).size === 0) renderMessages();
    }
  }

  // --- what the reader does ---

  async function pressed(m, b, btn) {
    if (b.data) {
      btn.classList.add("pending");
      try {
        await api("press", { chat: m.chat, user: currentUser(), message: m.id, data: b.data });
      } catch (e) {
        btn.classList.remove("pending");
        toast("Not sent: " + e.message);
      }
    } else if (b.copy) {
      copy(b.copy);
    } else if (b.url) {
      openURL(b.url);
    }
  }

  function copy(text) {
    if (!navigator.clipboard) return toast("Copy: " + text);
    navigator.clipboard.writeText(text).then(() => toast("Copied"), () => toast("Copy: " + text));
  }

  // inviteToken is the start parameter of a link to this bot (/invite).
  function inviteToken(url) {
    try {
      const u = new URL(url);
      const bot = u.pathname.replace(/^\//, "").toLowerCase();
      if (u.hostname === "t.me" && bot === S.setup.botUser.toLowerCase()) return u.searchParams.get("start");
    } catch (_) { /* not a URL */ }
    return null;
  }

  function openURL(url) {
    const token = inviteToken(url);
    if (token) return redeem(token);
    window.open(url, "_blank", "noopener");
  }

  // redeem opens an invite the way its recipient would: /start TOKEN in the
  // private chat of a user other than the one writing now.
  function redeem(token) {
    const me = currentUser();
    const chat = S.order.map((id) => S.chats.get(id)).find((c) => c.private && c.users[0] !== me);
    if (!chat) return toast("No other user to open the invite");
    select(chat.id);
    toast("Opening the invite as " + userName(chat.users[0]));
    sendText(chat.id, chat.users[0], "/start " + token);
  }

  async function sendText(chat, user, text) {
    try {
      await api("send", { chat, user, text });
    } catch (e) {
      toast("Not sent: " + e.message);
    }
  }

  $("messages").addEventListener("click", (e) => {
    const a = e.target.closest("a");
    if (a && a.classList.contains("cmd")) {
      e.preventDefault();
      $("text").value = a.dataset.cmd + " ";
      $("text").focus();
    } else if (a && inviteToken(a.href)) {
      e.preventDefault();
      redeem(inviteToken(a.href));
    } else if (e.target.classList.contains("spoiler")) {
      e.target.classList.toggle("shown");
    }
  });

  $("as").addEventListener("change", () => S.as.set(S.current, currentUser()));

  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    const t = $("text").value.trim();
    if (!t) return;
    $("text").value = "";
    sendText(S.current, currentUser(), t);
  });

  function renderChips() {
    const card = S.setup.cards[0].id;
    const cmds = ["/help", "/codes", "/links", "/history", "/history events", "/link card " + card,
      "/invite card " + card, "/start"];
    $("chips").replaceChildren(...cmds.map((c) => {
      const b = el("button", "", c);
      b.type = "button";
      b.addEventListener("click", () => sendText(S.current, currentUser(), c));
      return b;
    }));
  }

  // --- the panel ---

  function renderPanel() {
    const pick = $("card");
    pick.replaceChildren(...S.setup.cards.map((c) => {
      const o = el("option", "", c.id);
      o.value = c.id;
      return o;
    }));
    const about = () => {
      const c = S.setup.cards.find((c) => c.id === pick.value);
      $("cardAbout").textContent = c ? c.about : "";
    };
    pick.addEventListener("change", about);
    about();
    for (const provider of ["upay", "hypercard"]) {
      const box = $("samples-" + provider);
      box.replaceChildren(...S.setup.samples.filter((s) => s.provider === provider).map((s) => {
        const b = el("button", s.message ? "code" : "", s.event);
        b.type = "button";
        b.title = s.message ? "becomes a message in the chats linked to the card" : "recorded in history only";
        b.addEventListener("click", () => push(s, pick.value));
        return b;
      }));
    }
  }

  async function push(sample, card) {
    try {
      await api("push", { sample: sample.id, card });
    } catch (e) {
      toast("Push failed: " + e.message);
      return;
    }
    if (!sample.message) return;
    const c = S.setup.cards.find((c) => c.id === card);
    if (c && c.chat && S.chats.has(c.chat)) select(c.chat);
    if (phone()) setPanel(false);
  }

  function logPush(p) {
    const li = el("li", p.status === 200 ? "ok" : "bad");
    const at = new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
    li.textContent = `${at} ${p.provider} ${p.event} · card ${p.card} → ${p.status} ${p.answer}`;
    $("pushLog").prepend(li);
  }

  function setPanel(open) {
    $("panel").classList.toggle("open", open);
    $("panelToggle").setAttribute("aria-expanded", String(open));
  }
  $("panelToggle").addEventListener("click", () => setPanel(!$("panel").classList.contains("open")));

  // --- the event stream ---

  function connect() {
    const es = new EventSource("/demo/events");
    const status = $("status");
    es.onopen = () => { status.textContent = "live"; status.className = "status live"; };
    es.onerror = () => { status.textContent = "reconnecting…"; status.className = "status down"; };
    const on = (name, f) => es.addEventListener(name, (e) => f(JSON.parse(e.data)));
    on("reset", (d) => {
      S.chats = new Map(d.chats.map((c) => [c.id, c]));
      S.order = d.chats.map((c) => c.id);
      S.msgs = new Map();
      S.unread = new Map();
      S.live = false;
      select(S.chats.has(S.current) ? S.current : S.order[0]);
    });
    on("chat", (c) => {
      if (!S.chats.has(c.id)) S.order.push(c.id);
      S.chats.set(c.id, c);
      renderChats();
    });
    on("ready", () => { S.live = true; });
    on("message", upsert);
    on("delete", (d) => removeMessage(d.chat, d.id));
    on("toast", (d) => toast(d.text));
    on("push", logPush);
  }

  fetch("/demo/api/setup").then((r) => r.json()).then((setup) => {
    S.setup = setup;
    renderChips();
    renderPanel();
    if (location.hash === "#panel") setPanel(true);
    connect();
  }, () => { $("status").textContent = "the demo is not running"; });
})();
