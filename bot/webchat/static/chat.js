/* huqi web chat: renders the user's log (numbered entries), sends one action at a time, long-polls for news. */
(function () {
  "use strict";
  var boot = JSON.parse(document.body.getAttribute("data-boot"));
  var T = boot.texts;
  var csrf = boot.csrf;
  var last = 0;               // highest entry number shown
  var queue = Promise.resolve();
  var pendingCount = 0;
  var polling = false;
  var $ = function (id) { return document.getElementById(id); };
  var logEl = $("log");

  function newCid() {
    var a = new Uint8Array(12);
    (window.crypto || window.msCrypto).getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function api(method, url, body, isForm) {
    var opts = { method: method, credentials: "same-origin", headers: { "X-CSRF-Token": csrf } };
    if (body !== undefined) {
      if (isForm) { opts.body = body; } else { opts.body = JSON.stringify(body); opts.headers["Content-Type"] = "application/json"; }
    }
    return fetch(url, opts).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (data) {
        if (!resp.ok) {
          var err = new Error(data.text || T.error_sorry);
          err.status = resp.status; err.key = data.error;
          throw err;
        }
        return data;
      });
    });
  }

  function setStatus(text) {
    var el = $("status");
    el.textContent = text || "";
    el.hidden = !text;
  }

  function disableChips() {
    var chips = logEl.querySelectorAll("button.chip");
    for (var i = 0; i < chips.length; i++) chips[i].disabled = true;
  }

  function render(entry) {
    if (entry.seq <= last) return;            // shown already
    last = entry.seq;
    if (entry.cid) {
      var mine = logEl.querySelector('.pending[data-cid="' + entry.cid + '"]');
      if (mine) mine.parentNode.removeChild(mine);
    }
    var div = document.createElement("div");
    div.className = "msg " + (entry.from === "me" ? "me" : "bot") + (entry.news ? " news" : "");
    div.setAttribute("data-seq", String(entry.seq));
    if (entry.from === "me") disableChips();
    if (entry.text) div.appendChild(document.createTextNode(entry.text));
    if (entry.file_name) div.appendChild(document.createTextNode((entry.text ? "\n" : "") + "\uD83D\uDCCE " + entry.file_name));
    if (entry.file) {
      var a = document.createElement("a");
      a.className = "file";
      a.href = "/chat/api/file/" + encodeURIComponent(entry.file.id);
      a.setAttribute("download", entry.file.name);
      a.textContent = "\u2B07 " + T.download + " " + entry.file.name;
      if (entry.text) div.appendChild(document.createTextNode("\n"));
      div.appendChild(a);
    }
    if (entry.buttons && entry.buttons.length) {
      var box = document.createElement("div");
      box.className = "chips";
      entry.buttons.forEach(function (b) {
        var btn = document.createElement("button");
        btn.type = "button";
        btn.className = "chip";
        btn.textContent = b.label;
        btn.addEventListener("click", function () {
          if (btn.disabled) return;
          disableChips();
          btn.classList.add("chosen");
          act({ value: b.value }, b.label);
        });
        box.appendChild(btn);
      });
      div.appendChild(box);
    }
    logEl.appendChild(div);
  }

  function renderAll(data) {
    var atBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 80;
    (data.messages || []).forEach(render);
    if (atBottom || (data.messages || []).length) window.scrollTo(0, document.body.scrollHeight);
  }

  function showPending(cid, text) {
    var div = document.createElement("div");
    div.className = "msg me pending";
    div.setAttribute("data-cid", cid);
    div.textContent = text;
    logEl.appendChild(div);
    window.scrollTo(0, document.body.scrollHeight);
  }

  // One action at a time, in the order the user made them.
  function act(body, echo, form) {
    var cid = newCid();
    if (echo) showPending(cid, echo);
    pendingCount++;
    setStatus(T.pending);
    queue = queue.then(function () {
      var req = form ? api("POST", "/chat/api/upload?cid=" + cid + "&after=" + last, form, true)
                     : api("POST", "/chat/api/send", Object.assign({ cid: cid, after: last }, body));
      return req.then(renderAll).catch(function (err) {
        var mine = logEl.querySelector('.pending[data-cid="' + cid + '"]');
        if (mine) mine.parentNode.removeChild(mine);
        if (body && body.text && !$("text").value) $("text").value = body.text;   // nothing typed is lost
        if (err.status === 401) { location.reload(); return; }
        showNotice(err.message || T.error_sorry);
      });
    }).then(function () {
      pendingCount--;
      if (!pendingCount) setStatus("");
    });
    return queue;
  }

  function showNotice(text) {
    var n = $("notice");
    n.textContent = text;
    n.hidden = !text;
  }

  function poll(first) {
    api("GET", "/chat/api/events?after=" + last + (first ? "" : "&wait=1")).then(function (data) {
      if (first) {
        if (data.unseen) showNotice(T.since_last.replace("{n}", data.unseen));
        $("come-back-chat").hidden = !!data.email;
      }
      setStatus(pendingCount ? T.pending : "");
      renderAll(data);
      setTimeout(function () { poll(false); }, 0);
    }).catch(function (err) {
      if (err.status === 401) { location.reload(); return; }
      setStatus(T.offline);
      setTimeout(function () { poll(false); }, 2000 + Math.random() * 2000);
    });
  }

  $("composer").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var input = $("text");
    var text = input.value.trim();
    if (!text) return;
    if (text.length > boot.textLimit) { showNotice(T.error_too_long.replace("{limit}", boot.textLimit)); return; }
    input.value = "";
    showNotice("");
    act({ text: text }, text);
  });

  $("file").addEventListener("change", function () {
    var input = $("file");
    var f = input.files && input.files[0];
    if (!f) return;
    var form = new FormData();
    form.append("file", f, f.name);
    input.value = "";
    showNotice("");
    act(null, "\uD83D\uDCCE " + f.name, form);
  });

  // tabs
  function showTab(name) {
    ["chat", "cases", "account"].forEach(function (t) {
      $("panel-" + t).hidden = t !== name;
      $("tab-" + t).setAttribute("aria-selected", t === name ? "true" : "false");
    });
    if (name === "cases") loadCases();
  }
  Array.prototype.forEach.call(document.querySelectorAll("nav button"), function (b) {
    b.addEventListener("click", function () { showTab(b.getAttribute("data-tab")); });
  });

  function link(href, text) {
    var a = document.createElement("a");
    a.href = href; a.textContent = text; a.setAttribute("download", "");
    return a;
  }

  function loadCases() {
    api("GET", "/chat/api/cases").then(function (data) {
      var ul = $("cases");
      ul.textContent = "";
      $("cases-empty").hidden = data.cases.length > 0;
      data.cases.forEach(function (c) {
        var li = document.createElement("li");
        li.setAttribute("data-case", c.id);
        var head = document.createElement("div");
        head.className = "id"; head.textContent = c.id;
        var info = document.createElement("div");
        info.textContent = [c.type, c.platform].filter(Boolean).join(" · ");
        var st = document.createElement("div");
        st.className = "muted";
        st.textContent = T.case_status + ": " + c.status + (c.updated ? "  " + T.case_updated + " " + c.updated : "");
        var links = document.createElement("div");
        links.className = "links";
        var open = document.createElement("button");
        open.type = "button"; open.textContent = T.case_open;
        open.addEventListener("click", function () { showTab("chat"); act({ command: "cases" }, T.tab_cases); });
        links.appendChild(open);
        links.appendChild(link("/chat/cases/" + encodeURIComponent(c.id) + "/draft", T.case_draft));
        links.appendChild(link("/chat/cases/" + encodeURIComponent(c.id) + "/package", T.case_package));
        [head, info, st, links].forEach(function (x) { li.appendChild(x); });
        ul.appendChild(li);
      });
    }).catch(function (err) { showNotice(err.message); });
  }
  $("cases-refresh").addEventListener("click", loadCases);

  // recovery code and e-mail
  $("code-make").addEventListener("click", function () {
    api("POST", "/chat/api/code", {}).then(function (data) {
      $("code-value").textContent = data.code;
      $("code-shown").hidden = false;
    }).catch(function (err) { $("code-result").textContent = err.message; $("code-result").hidden = false; });
  });
  $("code-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    api("POST", "/chat/api/restore", { code: $("code-input").value }).then(function () {
      $("code-result").textContent = T.code_done; $("code-result").hidden = false;
      setTimeout(function () { location.reload(); }, 300);
    }).catch(function (err) { $("code-result").textContent = err.message; $("code-result").hidden = false; });
  });
  $("email-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    api("POST", "/chat/api/email", { email: $("email-input").value }).then(function (data) {
      $("email-result").textContent = data.text; $("email-result").hidden = false;
    }).catch(function (err) { $("email-result").textContent = err.message; $("email-result").hidden = false; });
  });
  function say(id, text) { $(id).textContent = text; $(id).hidden = !text; }
  if (boot.sms) {
    $("phone-section").hidden = false;
    $("phone-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      api("POST", "/chat/api/phone", { phone: $("phone-input").value }).then(function (data) {
        say("phone-result", data.text);
      }).catch(function (err) { say("phone-result", err.message); });
    });
    $("phone-code-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      api("POST", "/chat/api/phone/confirm", { code: $("phone-code").value }).then(function (data) {
        say("phone-result", data.text);
        if (data.switched) setTimeout(function () { location.reload(); }, 300);
      }).catch(function (err) { say("phone-result", err.message); });
    });
  }
  if (!boot.mail) {
    $("email-form").hidden = true;
    $("email-explain").textContent = T.email_off;
  }

  poll(true);
})();
