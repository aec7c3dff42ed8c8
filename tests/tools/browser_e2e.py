"""The web page end to end in headless Chromium (tests/integration/browser_e2e.sh drives it).

usage: browser_e2e.py CHROMIUM URL TOKEN QUERY.h5ad BAD_FILE OTHER_USERS_JOB ARTIFACTS_DIR
Signs in by typing the token, cancels a throttled upload half way, maps QUERY onto the pancreas reference with label Group through
the page's file input, leaves the page while the job runs and comes back, checks the result
view against the API (every query cell drawn, the label table's total, the QC genes-matched
figure), downloads adata.h5ad (its path printed as `download: PATH` for anndata), checks that
a refused file shows the API's problem detail and that another user's job reads "not found",
measures the plot's frame time with 100k points, and fails on any console error.
Screenshots go to ARTIFACTS_DIR.
"""
import json
import os
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cdp import Chrome  # noqa: E402

CHROME, URL, TOKEN, QUERY, BAD, OTHER_JOB, ART = sys.argv[1:8]
os.makedirs(ART, exist_ok=True)


def api(path, data=None, ctype=None):
    """(status, parsed JSON body) of an API call with the token."""
    rq = urllib.request.Request(URL + path, data=data, headers={"Authorization": "Bearer " + TOKEN})
    if ctype:
        rq.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(rq, timeout=300) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def check(cond, what):
    if not cond:
        raise SystemExit("FAIL: " + what)
    print("ok:", what)


def js(s):
    return json.dumps(s)


with Chrome(CHROME, ART) as c:
    # 1. sign in by typing the token
    c.goto(URL + "/")
    c.wait("document.body.dataset.state === 'need-token'", 60, "the sign-in prompt")
    c.type_text("#token", TOKEN)
    c.eval("document.querySelector('#token-form button[type=submit]').click()")
    c.wait("!!document.querySelector('.card[data-reference=pancreas]')", 60, "the reference card")
    check(not c.eval("localStorage.getItem('scalexd.token') === null"), "token kept in localStorage")
    c.screenshot(os.path.join(ART, "1_references.png"))

    def choose(files):
        c.eval("location.hash = 'map'")
        c.set_files("#file-input", files)
        c.eval("""(() => { const r = document.getElementById('ref-select'); r.value = 'pancreas';
                  r.dispatchEvent(new Event('change'));
                  const l = document.getElementById('label-select'); l.value = 'Group';
                  return l.value; })()""")
        c.eval("document.getElementById('map-error').textContent = ''")
        c.eval("document.getElementById('map-start').click()")

    # 2. a file the API refuses: the page shows the API's own problem detail
    with open(BAD, "rb") as f:
        st, prob = api("/v1/datasets?name=probe", f.read(), "application/octet-stream")
    check(400 <= st < 500 and prob.get("detail"), "the API refuses the bad file (%d)" % st)
    choose([BAD])
    shown = c.wait("document.getElementById('map-error').textContent", 120, "the upload error")
    check(prob["detail"] in shown, "page shows the API's detail: %r" % shown)
    c.screenshot(os.path.join(ART, "2_bad_file.png"))

    # 2b. cancel an upload half way (the upload throttled to 100 kB/s so that it is)
    st, before = api("/v1/datasets?page_size=1000")
    c.call("Network.enable")
    c.call("Network.emulateNetworkConditions", {"offline": False, "latency": 0,
                                                "downloadThroughput": -1, "uploadThroughput": 100000})
    choose([QUERY])
    c.wait("document.getElementById('upload-progress').value > 0.02", 120, "upload progress")
    c.eval("document.getElementById('upload-cancel').click()")
    msg = c.wait("document.getElementById('map-error').textContent", 60, "the cancel")
    check(msg == "Upload canceled.", "upload canceled from the page: %r" % msg)
    c.call("Network.emulateNetworkConditions", {"offline": False, "latency": 0,
                                                "downloadThroughput": -1, "uploadThroughput": -1})
    st, after = api("/v1/datasets?page_size=1000")
    check(len(after["datasets"]) == len(before["datasets"]), "a canceled upload stores nothing")

    # 3. the query through the file input, then leave and come back while it maps
    choose([QUERY])
    c.wait("/job=/.test(location.hash)", 300, "the job to be submitted")
    job = c.eval("new URLSearchParams(location.hash.slice(1)).get('job')")
    print("job:", job)
    c.goto("about:blank")
    c.goto(URL + "/")
    c.wait("document.body.dataset.job === %s && document.body.dataset.state === 'plotted' "
           "|| document.body.dataset.state === 'error'" % js(job), 600, "the result map")
    check(c.eval("document.body.dataset.state") == "plotted",
          "job %s came back after leaving the page and is plotted (%s)" % (
              job, c.eval("document.getElementById('map-error').textContent")))

    # 4. the result view against the API
    cells, tok = [], None
    while True:
        st, d = api("/v1/jobs/%s/results/umap?set=query&page_size=200000%s" % (
            job, "&page_token=" + str(tok) if tok is not None else ""))
        check(st == 200, "umap page")
        cells += d["cells"]
        tok = d.get("next_page_token")
        if tok is None:
            break
    nq = len(cells)
    st, lab = api("/v1/jobs/%s/results/labels" % job)
    check(len(lab["labels"]) == nq, "API: %d labels for %d query cells" % (len(lab["labels"]), nq))
    with open(os.path.join(ART, "labels.json"), "w") as f:  # for the download's check
        json.dump(lab, f)
    print("labels:", os.path.join(ART, "labels.json"))
    drawn = int(c.eval("document.getElementById('plot').dataset.drawnQuery"))
    check(drawn == nq, "plot draws every query cell: %d of %d" % (drawn, nq))
    rows = c.eval("[...document.querySelectorAll('#label-table tbody tr')].map(r => +r.dataset.cells)")
    check(sum(rows) == nq, "label table sums to %d over %d labels" % (sum(rows), len(rows)))
    check(len(rows) == len({x["label"] for x in lab["labels"]}), "one table row per label")
    gm = c.eval("document.getElementById('qc').dataset.genesMatched")
    shown = c.eval("(document.querySelector('#qc dd[data-key=genes_matched]') || {}).textContent")
    st, qc = api("/v1/jobs/%s/results/qc" % job)
    if st != 200:
        st, res = api("/v1/jobs/%s/results" % job)
        summ = res.get("summary") or {}
        qc = summ.get("qc") or {"genes": {"matched": summ.get("metrics", {}).get("genes_present")}}
    check(gm == str(qc["genes"]["matched"]), "QC genes matched %s = the API's %s" % (gm, qc["genes"]["matched"]))
    check(gm and int(gm) > 0 and shown, "QC block shows genes matched: %r" % shown)

    # hover a query cell: its id and scores appear
    pt = c.eval("""(() => { const p = S.plot, d = S.plotData, k = d.layer.indexOf(1);
        const t = p.xf(p.view), r = p.cv.getBoundingClientRect();
        return {x: r.left + (d.x[k] * t.s + t.ox) * r.width / p.cv.width,
                y: r.top + (t.oy - d.y[k] * t.s) * r.height / p.cv.height,
                cell: S.result.cells[d.cellIndex[k]].cell}; })()""")
    c.call("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": pt["x"], "y": pt["y"]})
    tip = c.wait("!document.getElementById('tooltip').hidden && document.getElementById('tooltip').textContent",
                 10, "the tooltip")
    check("confidence" in tip, "hover shows a cell and its confidence: %r" % tip)
    # a label row highlights its cells
    c.eval("document.querySelector('#label-table tbody button').click()")
    check(c.eval("document.querySelector('#label-table tbody button').getAttribute('aria-pressed')") == "true",
          "label row pressed")
    check(int(c.eval("document.getElementById('plot').dataset.drawnQuery")) == nq, "still every cell drawn")
    c.screenshot(os.path.join(ART, "3_result.png"))

    # 5. download adata.h5ad through the page
    dl = os.path.join(ART, "downloads")
    os.makedirs(dl, exist_ok=True)
    c.allow_downloads(dl)
    c.eval("document.querySelector('#downloads button[data-file=\"adata.h5ad\"]').click()")
    path = os.path.join(dl, job + "_adata.h5ad")
    end = time.time() + 120
    while not (os.path.exists(path) and not [f for f in os.listdir(dl) if f.endswith(".crdownload")]):
        if time.time() > end:
            raise SystemExit("FAIL: no download in %s: %s" % (dl, os.listdir(dl)))
        time.sleep(0.25)
    print("download:", path)

    # the catalog card now has its map thumbnail: every reference cell of the catalog
    c.eval("location.hash = 'references'")
    n = c.wait("+document.querySelector('.card[data-reference=pancreas] canvas').dataset.points",
               60, "the reference thumbnail")
    st, refs = api("/v1/references")
    cells = [r["cells"] for r in refs["references"] if r["name"] == "pancreas"][0]
    check(n == cells, "reference thumbnail draws %s points, the catalog says %s cells" % (n, cells))
    c.screenshot(os.path.join(ART, "3b_references.png"))

    # 6. another user's job id in the URL: not found, no data
    c.goto(URL + "/#job=" + OTHER_JOB)
    c.wait("['not-found', 'error'].includes(document.body.dataset.state)", 60, "the not-found answer")
    msg = c.eval("document.getElementById('map-error').textContent")
    check(c.eval("document.body.dataset.state") == "not-found" and "not found" in msg,
          "another user's job reads not found: %r" % msg)
    check(c.eval("document.getElementById('result-section').hidden"), "no result shown")
    c.screenshot(os.path.join(ART, "4_not_found.png"))

    # 6b. My data: delete the job from its row (the confirmation answered yes)
    c.eval("location.hash = 'mydata'")
    sel = "#jobs tr[data-job=%s] button" % js(job)
    # the table may still show the row as it was when the page last listed the jobs (running,
    # with Cancel) until its refresh lands: wait for the finished job's Delete
    c.wait("(document.querySelector(%s) || {}).textContent === 'Delete'" % js(sel), 60,
           "the job's row in My data with its Delete button")
    c.eval("window.confirm = () => true; document.querySelector(%s).click()" % js(sel))
    c.wait("!document.querySelector(%s)" % js(sel), 60, "the row to go")
    st, _ = api("/v1/jobs/" + job)
    check(st == 404, "job deleted from My data (GET answers %d)" % st)

    # 7. 100k points: frame times (printed, not judged)
    b = c.eval("sxBenchPlot(100000)", timeout=300)
    print("frame time with %d points: median %.1f ms, p95 %.1f ms per pan/zoom frame; full redraw "
          "%.1f ms, first draw %.1f ms" % (b["points"], b["median_frame_ms"], b["p95_frame_ms"],
                                            b["redraw_ms"], b["first_render_ms"]))
    c.screenshot(os.path.join(ART, "5_100k.png"))

    errs = c.errors()
    check(not errs, "no console errors: %s" % errs)
print("screenshots:", ART)
