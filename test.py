"""Restore a folder of images: python test.py --dataroot DIR --name NAME [--epoch latest]
or with a shipped model: python test.py --dataroot DIR --pretrained rain_synthetic
or with a method without training: python test.py --dataroot DIR --model dcp

DIR is a plain folder of images, one image file, or a dataset root with testA/ (and testB/
ground truth). Every image is processed at full resolution; outputs keep their input's size
and go to results/<name>/test_<epoch>/images/<stem>.png (results/<NAME>/test_pretrained/
with --pretrained NAME, results/<METHOD>/test_method/ with --model METHOD), with an
index.html beside them. Every input and output gets its no-reference scores (NIQE, PIQE:
quality.csv), and where there is ground truth PSNR/SSIM, the rain residue and the dark
artifacts (metrics.csv; docs/METHODS.md, section 5).

Each run replaces what an earlier run wrote there (listed in written_by_test.jsonl) and
nothing else: a file of yours in images/ stays, and a run that would overwrite it is refused;
one run at a time writes a results folder (test.lock). The page and metrics name the
checkpoint (file, epoch, iteration, SHA-256) or the method (and its parameters) that made
the outputs.

Exit status: 0 all images restored; 3 some images were unreadable, in a format test.py does not
read (GIF, HEIC, camera raw, ...) or too large for memory and skipped (listed at the end and in
skipped.txt); 129 / 130 / 143 stopped by SIGHUP / SIGINT / SIGTERM (no temporary file is left);
2 bad options, no usable checkpoint or folder, a --backend that cannot run here, results
that cannot be written (no space left), inputs or ground truth inside the results folder
this run would replace, or a results folder another test.py is writing.

The code is the restoration package (restoration/cli.py, batch.py, loading.py); this file
only runs it, and nothing imports it (a module named `test` is the standard library's).
"""
import sys

from restoration.cli import main

if __name__ == "__main__":
    sys.exit(main())
