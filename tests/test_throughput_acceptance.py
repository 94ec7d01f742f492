"""benchmarks.rnn_throughput's acceptance check reads issue 32's bars from the sections that ran
(no timing here: the benchmark itself measures)."""

from benchmarks import rnn_throughput as rt


def _layer(ratio, fraction):
  return dict(rt.ACCEPTANCE, cell="lstm", ratio=ratio,
              xferlab={"fraction_of_matmul_peak": fraction})


def test_every_bar_is_parity_or_the_peak_share():
  results = {"layers": [_layer(0.95, 0.751), dict(_layer(2.0, 0.9), cell="gru")],
             "classifier": [{"ratio": 1.04}],
             "sweep": {"speedup": 0.71, "auto_speedup": 0.96},
             "lm": [{"ratio": 1.07}]}
  check = rt.acceptance(results)
  assert (check["ratio"], check["ratio_ok"], check["peak_ok"]) == (0.95, False, True)
  assert check["classifier_ok"] and check["lm_ok"] and not check["sweep_ok"]
  text = "\n".join(rt.acceptance_lines(check))
  assert "0.95x PyTorch (need 1.0x), 75.1% of the matmul peak (need 75%)" in text
  assert "vectorize='auto' 0.96x sequential (need 1.0x); always vmapped 0.71x" in text


def test_the_sweep_bar_reads_auto_with_its_decision_remembered_and_shows_the_first_time():
  check = rt.acceptance({"sweep": {"speedup": 0.73, "auto_speedup": 0.87,
                                   "auto_remembered_speedup": 1.01}})
  assert check["sweep_ok"] and check["sweep_auto_speedup"] == 0.87
  text = "\n".join(rt.acceptance_lines(check))
  assert ("vectorize='auto' 1.01x sequential with its decision remembered (need 1.0x); 0.87x "
          "the first time on this machine, which measures; always vmapped 0.73x") in text
  slower = rt.acceptance({"sweep": {"speedup": 0.73, "auto_speedup": 0.87,
                                    "auto_remembered_speedup": 0.97}})
  assert not slower["sweep_ok"]


def test_only_the_sections_that_ran_are_checked():
  assert rt.acceptance({}) is None
  check = rt.acceptance({"classifier": [{"ratio": None}]})
  assert check == {"classifier_ratio": None, "classifier_ok": None}
  assert rt.acceptance_lines(check)[1:] == ["  classifier step: n/a PyTorch (need 1.0x)"]
