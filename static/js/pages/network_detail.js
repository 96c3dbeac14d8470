/* Network detail: the leases table is patched row by row from lease.updated messages
 * (rows keyed by data-lease-mac); attachment changes re-render the attachments table. */
(function () {
  "use strict";
  var table = document.getElementById("leases");
  if (!table || !window.CiaoLive) return;
  var networkId = table.dataset.networkId;
  var body = table.tBodies[0];

  function cell(inner) {
    var td = document.createElement("td");
    td.appendChild(inner);
    return td;
  }
  function el(tag, field, text) {
    var node = document.createElement(tag);
    node.dataset.field = field;
    node.textContent = text;
    return node;
  }

  function newRow(lease) {
    var tr = document.createElement("tr");
    tr.dataset.leaseMac = lease.mac;
    var code = document.createElement("code");
    code.textContent = lease.mac;
    var mac = document.createElement("td");
    mac.dataset.field = "mac";
    mac.appendChild(code);
    tr.appendChild(mac);
    tr.appendChild(el("td", "ip", ""));
    tr.appendChild(el("td", "hostname", ""));
    var state = el("span", "state", "");
    state.className = "state";
    tr.appendChild(cell(state));
    var time = el("time", "expires_at", "");
    time.setAttribute("data-countdown", "");
    tr.appendChild(cell(time));
    return tr;
  }

  function findRow(mac) {
    return Array.prototype.find.call(body.rows, function (tr) { return tr.dataset.leaseMac === mac; });
  }

  CiaoLive.on("lease.updated", function (lease) {
    if (String(lease.network) !== networkId) return;
    var row = findRow(lease.mac);
    if (lease.deleted) {
      if (row) row.remove();
      CiaoLive.refreshFragment("pager");
      return;
    }
    if (!row) {
      row = newRow(lease);
      body.insertBefore(row, body.querySelector(".empty-row"));
      CiaoLive.refreshFragment("pager");
    }
    row.dataset.leaseId = lease.id;
    CiaoLive.setField(row, "ip", lease.ip);
    CiaoLive.setField(row, "hostname", lease.hostname);
    CiaoLive.setState(row.querySelector('[data-field="state"]'), lease.state);
    var time = row.querySelector('[data-field="expires_at"]');
    time.setAttribute("datetime", lease.expires_at || "");
    time.textContent = CiaoLive.formatRemaining(lease.expires_at);
    var empty = body.querySelector(".empty-row");
    if (empty) empty.hidden = true;
    row.classList.add("flash");
    window.setTimeout(function () { row.classList.remove("flash"); }, 1500);
  });

  CiaoLive.on("attachment.updated", function (attachment) {
    if (String(attachment.network) === networkId) CiaoLive.refreshFragment("attachments");
  });
  CiaoLive.on("instance.updated", function () {
    if (document.querySelector("#attachments tr[data-attachment-id]")) CiaoLive.refreshFragment("attachments");
  });
})();
