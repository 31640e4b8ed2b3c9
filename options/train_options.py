"""Training flags: the shared ones, the networks, the data, and those of the chosen model and dataset."""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import torch

import data
import models
from data.base_dataset import PREPROCESS_MODES
from models.builders import CHOICES, DEFAULT_T_MIN, build_discriminator, generator_architecture
from models.contrastive import parse_layers
from models.diffaug import parse_policy
from models.two_domain import TwoDomainModel
from util.boards import DISPLAY_BACKENDS
from util.flags import OneLineParser, str2bool
from util.schedulers import LR_POLICIES
from util.weight_init import INIT_TYPES

from .base_options import BaseOptions, OptionError, at_least, check_thread_count

# numpy's generator takes seeds in [0, 2**32): train.py seeds it with --seed.
MAX_SEED = 2**32 - 1
# Models that train no discriminator: the crop needs to suit only their generator.
MODELS_WITHOUT_DISCRIMINATOR = ("paired",)


class TrainOptions(BaseOptions):
    is_train = True

    def initialize(self, parser):
        parser = super().initialize(parser)
        g = parser.add_argument_group("model")
        g.add_argument("--model", default="dcdgan", help="model to use: models/<model>_model.py")
        g.add_argument("--seed", type=int, default=0, help="random seed for weights, data order and patch sampling")

        g = parser.add_argument_group("networks")
        g.add_argument("--input_nc", type=int, default=3)
        g.add_argument("--output_nc", type=int, default=3)
        g.add_argument("--ngf", type=int, default=64, help="generator width (filters in the first conv)")
        g.add_argument("--ndf", type=int, default=64, help="discriminator width")
        g.add_argument("--netG", default="resnet_9blocks", choices=CHOICES["netG"],
                       help="resnet_9blocks | resnet_6blocks | resnet_4blocks (work at 1/4 resolution) | nafnet "
                            "(a full-resolution U-Net of NAF blocks that adds its output to its input; "
                            "use --ngf 16-32 and --nce_layers 0,1,3,6: docs/METHODS.md)")
        g.add_argument("--netD", default="basic", choices=CHOICES["netD"],
                       help="basic (70x70 PatchGAN) | n_layers | pixel")
        g.add_argument("--n_layers_D", type=int, default=3, help="only used if netD == n_layers")
        g.add_argument("--normG", default="instance", choices=CHOICES["norm"], help="instance | batch | none")
        g.add_argument("--normD", default="instance", choices=CHOICES["normD"],
                       help="instance | batch | none | spectral (spectral normalisation of every convolution, no "
                            "norm layer: a stabiliser for small data, docs/METHODS.md)")
        g.add_argument("--init_type", default="xavier", choices=INIT_TYPES,
                       help="normal | xavier | kaiming | orthogonal")
        g.add_argument("--init_gain", type=float, default=0.02)
        g.add_argument("--no_antialias", action="store_true", help="strided convs instead of blur-pool downsampling")
        g.add_argument("--no_antialias_up", action="store_true", help="transposed convs instead of blur upsampling")
        g.add_argument("--upsample_taps", type=int, default=4, choices=(4, 3),
                       help="binomial filter of the anti-aliased upsampling: 4 taps [1,3,3,1] as in the CUT "
                            "family; 3 taps [1,2,1] only to resume checkpoints made before this flag existed")
        g.add_argument("--global_residual", action="store_true",
                       help="generators add their output to their input (off in every paper here; "
                            "the quick configuration uses it, see docs/EXPERIMENTS.md 'Why the residual')")
        g.add_argument("--rain_layer", default="none", choices=CHOICES["rain_layer"],
                       help="leaky: generators output their input minus (G_A, restoring) or plus (G_B) a rain "
                            "layer that is non-negative up to a small leak (rain only brightens; domain A is the "
                            "rainy one); gray: the same layer, colourless (one value for R, G and B); gray_soft: "
                            "a colourless layer that is never negative, |mean of the channels|, with a full "
                            "gradient at zero rain (no absorbing state, docs/METHODS.md); linear (with "
                            "--global_residual): the input plus a correction without a tanh, clamped with the "
                            "gradient passing, so that a generator stepped into saturation can recover. none: as "
                            "--global_residual says")
        g.add_argument("--haze_layer", default="none", choices=CHOICES["haze_layer"],
                       help="asm: the ResNet generators output through the scattering model I = J t + A (1 - t) "
                            "(domain A hazy): they predict a transmission map t in [--t_min, 1] and one airlight A; "
                            "G_A outputs (I - A (1 - t)) / t, G_B renders J t + A (1 - t). Replaces --rain_layer "
                            "and --global_residual")
        g.add_argument("--t_min", type=float, default=DEFAULT_T_MIN,
                       help="--haze_layer: the lowest transmission (G_A amplifies the hazy image at most 1/t_min "
                            "times)")
        g.add_argument("--haze_init", default="none", choices=CHOICES["haze_init"],
                       help="--haze_layer asm: dcp starts the restoring generator from the dark channel prior "
                            "(its unrefined transmission and airlight; the network learns corrections to them) "
                            "instead of a light uniform veil")
        g.add_argument("--skips", action="store_true",
                       help="add the encoder's full- and half-resolution features to the decoder's (U-Net-like "
                            "skips; not in the papers): thin structures such as rain streaks become reachable")

        g = parser.add_argument_group("data")
        g.add_argument("--dataset_mode", default="unaligned", help="unaligned | single: data/<mode>_dataset.py")
        g.add_argument("--num_threads", type=int, default=2, help="DataLoader workers")
        g.add_argument("--batch_size", type=int, default=1)
        g.add_argument("--load_size", type=int, default=286, help="resize images to this size")
        g.add_argument("--crop_size", type=int, default=256, help="then crop to this size")
        g.add_argument("--max_dataset_size", type=int, default=None,
                       help="use at most this many images per domain (default: all)")
        g.add_argument("--preprocess", default="resize_and_crop", choices=PREPROCESS_MODES,
                       help="resize_and_crop | crop | scale_width | scale_width_and_crop | none")
        g.add_argument("--no_flip", action="store_true", help="no random horizontal flips")
        g.add_argument("--serial_batches", action="store_true", help="take B images in order instead of at random")

        g = parser.add_argument_group("display")
        g.add_argument("--display_backend", default="visdom", choices=DISPLAY_BACKENDS,
                       help="dashboards: visdom, tensorboard (event files in checkpoints/<name>/), both, "
                            "or wandb (Weights & Biases; WANDB_MODE=offline works without an account)")
        g.add_argument("--wandb_project", default="dcdgan", help="W&B project of --display_backend wandb")
        g.add_argument("--display_id", type=int, default=1, help="visdom window id; 0 disables visdom")
        g.add_argument("--display_server", default="http://localhost", help="visdom server")
        g.add_argument("--display_port", type=int, default=8097, help="visdom port")
        g.add_argument("--display_env", default="", help="visdom environment (default: the run name)")
        g.add_argument("--display_ncols", type=int, default=4, help="images per row in the visdom grid")
        g.add_argument("--display_winsize", type=int, default=256, help="display size in visdom and HTML")
        g.add_argument("--display_freq", type=int, default=400, help="show visuals every N iterations")
        g.add_argument("--update_html_freq", type=int, default=1000,
                       help="save visuals to the HTML page every N iterations")
        g.add_argument("--print_freq", type=int, default=100, help="log losses every N iterations")
        g.add_argument("--no_html", action="store_true", help="do not write checkpoints/<name>/web/")

        g = parser.add_argument_group("saving and resuming")
        g.add_argument("--save_latest_freq", type=int, default=5000, help="save 'latest' every N iterations")
        g.add_argument("--save_epoch_freq", type=int, default=5, help="save '<epoch>' every N epochs")
        g.add_argument("--continue_train", action="store_true", help="resume from checkpoints/<name>/<epoch>.pt")
        g.add_argument("--overwrite_run", action="store_true",
                       help="start over a run whose folder already holds checkpoints (deletes them); without it "
                            "train.py refuses, so that no run is replaced by accident")
        g.add_argument("--epoch_count", type=int, default=1,
                       help="first epoch number when not resuming (resuming takes it from the checkpoint)")

        g = parser.add_argument_group("optimisation")
        g.add_argument("--n_epochs", type=int, default=200, help="epochs at the initial learning rate")
        g.add_argument("--n_epochs_decay", type=int, default=200, help="epochs of linear decay to zero")
        g.add_argument("--n_iters", type=int, default=0,
                       help="iteration budget: iterations at the initial learning rate; with --n_iters_decay it "
                            "replaces the epoch counts (training stops after n_iters + n_iters_decay iterations, "
                            "the lr is updated every iteration), whatever the dataset's size. 0: use epochs")
        g.add_argument("--n_iters_decay", type=int, default=0,
                       help="iteration budget: iterations of linear decay to zero after --n_iters")
        g.add_argument("--lr", type=float, default=0.0002)
        g.add_argument("--beta1", type=float, default=0.5)
        g.add_argument("--beta2", type=float, default=0.999)
        g.add_argument("--gan_mode", default="lsgan", choices=CHOICES["gan_mode"], help="lsgan | vanilla | hinge")
        g.add_argument("--pool_size", type=int, default=50, help="image history shown to D; 0 disables")
        g.add_argument("--lr_policy", default="linear", choices=LR_POLICIES, help="linear | step | plateau | cosine")
        g.add_argument("--decay_full_images", type=str2bool, nargs="?", const=True, default=False,
                       help="once the learning rate decays (epoch > n_epochs) resize images to --crop_size "
                            "instead of load-and-crop: the fine-tuning phase of the CUT family's reference code "
                            "(on by default for cut, fastcut, dcl, dcdgan, negcut); like there, it changes "
                            "only --preprocess modes that resize, and only under an epoch budget")
        g.add_argument("--lr_decay_iters", type=int, default=50, help="epochs per step for lr_policy step")
        g.add_argument("--ema_decay", type=float, default=0.0,
                       help="keep an exponential moving average of the restoring generator's weights with this "
                            "decay (e.g. 0.999; warmed up over the first steps) and test with it; 0 disables")
        g.add_argument("--max_iters", type=int, default=None,
                       help="stop after this many iterations in total (for quick runs and benchmarks)")
        g.add_argument("--deterministic", type=str2bool, nargs="?", const=True, default=False,
                       help="deterministic algorithms (bitwise-reproducible resumes on GPU, slower)")
        g.add_argument("--nan_policy", default="stop", choices=("stop", "skip"),
                       help="on a NaN/Inf loss: stop (exit 4, save nothing) or skip that update "
                            "(stops after 20 skipped iterations in a row)")
        g.add_argument("--channels_last", type=str2bool, nargs="?", const=True, default=False,
                       help="channels-last memory format for convolutions")
        g.add_argument("--compile", type=str2bool, nargs="?", const=True, default=False,
                       help="torch.compile the networks (needs a C++ compiler on the CPU, Triton on CUDA)")
        g.add_argument("--winograd", type=str2bool, nargs="?", const=True, default=False,
                       help="CPU, float32: stride-1 convolutions and their input gradients as Winograd "
                            "convolutions (NNPACK; runtime/winograd.py): faster on AVX2 CPUs, slower than oneDNN on "
                            "AVX-512 ones (docs/PERFORMANCE.md, 'Training'); rounding about 1e-5 relative")
        g = parser.add_argument_group("stabilisers for small data (docs/METHODS.md)")
        g.add_argument("--diffaug", default="",
                       help="differentiable augmentation of every image a discriminator sees, real and fake, in "
                            "its step and the generators' (Zhao et al. 2020): comma-separated kinds of "
                            "color, translation, cutout, e.g. color,translation,cutout. '' (default): off")
        g.add_argument("--lambda_R1", type=float, default=0.0,
                       help="weight of the R1 penalty (squared gradient of D on real images) in the "
                            "discriminators' step of cycle_gan, dcl, dcdgan, cddgan; 0 disables")
        g.add_argument("--r1_every", type=int, default=16,
                       help="compute R1 every N discriminator steps (lazy regularisation), scaled by N")
        return parser

    def gather_options(self, argv: list[str] | None) -> argparse.Namespace:
        """Two-pass parse: the chosen model and dataset add their own flags and defaults.

        The passes read only --model and --dataset_mode (no --help, no required flags), so
        that `--model NAME --help` lists that model's flags too.
        """
        parser = OneLineParser(formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        self.parser = self.initialize(parser)
        argv = sys.argv[1:] if argv is None else list(argv)
        for plugins, flag in ((models, "model"), (data, "dataset_mode")):
            chooser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
            chooser.add_argument(f"--{flag}", default=parser.get_default(flag))  # a model may change the dataset's
            name = getattr(chooser.parse_known_args(argv)[0], flag)
            try:
                check_plugin_name(plugins, flag, name)
                plugins.get_option_setter(name)(parser, self.is_train)
            except ValueError as err:  # no such --model / --dataset_mode
                parser.error(str(err))
        return parser.parse_args(argv)

    def validate(self, opt: argparse.Namespace) -> None:
        """Sizes, frequencies, weights and rates in range, and a run that trains something."""
        super().validate(opt)
        if opt.continue_train and opt.overwrite_run:
            raise OptionError("--continue_train resumes the run and --overwrite_run starts it over: pass only one")
        at_least(opt, 1, "ngf", "ndf", "n_layers_D", "batch_size", "load_size", "crop_size", "display_ncols",
                 "display_winsize", "display_freq", "update_html_freq", "print_freq", "save_latest_freq",
                 "save_epoch_freq", "lr_decay_iters", "epoch_count", "max_dataset_size", "num_patches", "netF_nc",
                 "neg_nz")
        if not 0 <= opt.seed <= MAX_SEED:
            raise OptionError(f"--seed must lie in 0..{MAX_SEED} (numpy's range), got {opt.seed}")
        check_thread_count("--num_threads", opt.num_threads)
        at_least(opt, 0, "num_threads", "n_epochs", "n_epochs_decay", "n_iters", "n_iters_decay", "pool_size",
                 "neg_queue", "init_gain", *(name for name in vars(opt) if name.startswith("lambda_")))
        at_least(opt, 0, "pseudo_warmup", "pseudo_ssim")
        for name in ("lr", "lr_N", "nce_T"):
            if getattr(opt, name, None) is not None and not getattr(opt, name) > 0:
                raise OptionError(f"--{name} must be greater than 0, got {getattr(opt, name)}")
        for name in ("beta1", "beta2", "ema_decay", "neg_ema_decay"):
            if hasattr(opt, name) and not 0 <= getattr(opt, name) < 1:
                raise OptionError(f"--{name} must lie in [0, 1), got {getattr(opt, name)}")
        if not 0 < opt.display_port < 65536:
            raise OptionError(f"--display_port must be a port number (1-65535), got {opt.display_port}")
        if opt.max_iters is not None and opt.max_iters < 1:
            raise OptionError(f"--max_iters {opt.max_iters} trains nothing: give at least 1 (or leave it out)")
        if opt.n_iters + opt.n_iters_decay == 0 and opt.n_epochs + opt.n_epochs_decay == 0:
            raise OptionError("--n_epochs 0 with --n_epochs_decay 0 trains nothing: give at least one epoch "
                              "(or an iteration budget with --n_iters)")
        if opt.n_iters + opt.n_iters_decay > 0 and opt.lr_policy != "linear":
            raise OptionError(f"--n_iters / --n_iters_decay decay the learning rate linearly: use --lr_policy "
                              f"linear, not {opt.lr_policy}")
        if opt.preprocess in ("resize_and_crop", "scale_width_and_crop") and opt.crop_size > opt.load_size:
            raise OptionError(f"--crop_size {opt.crop_size} is larger than --load_size {opt.load_size}: the crop "
                              "is taken from the resized image; lower --crop_size or raise --load_size")
        if (opt.input_nc, opt.output_nc) != (3, 3):
            raise OptionError(f"--input_nc {opt.input_nc} / --output_nc {opt.output_nc}: the data loaders give "
                              "RGB images, so both must be 3")
        if getattr(opt, "lambda_rehaze", 0) > 0 and opt.haze_layer == "none":
            raise OptionError("--lambda_rehaze hazes G_A's output through G_A's own transmission: it needs "
                              "--haze_layer asm")
        if getattr(opt, "rehaze_max_power", 1) < 1:
            raise OptionError(f"--rehaze_max_power must be at least 1, got {opt.rehaze_max_power}")
        if opt.winograd and opt.channels_last:
            raise OptionError("--winograd needs the NCHW layout that NNPACK reads: drop --channels_last")
        check_pseudo_warmup(opt)
        check_generator(opt)
        check_training_size(opt)
        check_stabilisers(opt)


def check_stabilisers(opt: argparse.Namespace) -> None:
    """--diffaug names known kinds; --lambda_R1 has a CycleGAN-layout discriminator step to go
    into; --r1_every is at least 1."""
    try:
        parse_policy(opt.diffaug)
    except ValueError as err:
        raise OptionError(str(err)) from err
    at_least(opt, 1, "r1_every")
    if opt.diffaug and opt.model in MODELS_WITHOUT_DISCRIMINATOR:
        raise OptionError(f"--diffaug augments what a discriminator sees; --model {opt.model} has none: drop it")
    if opt.lambda_R1 > 0 and not issubclass(models.find_model_using_name(opt.model), TwoDomainModel):
        raise OptionError(f"--lambda_R1 is implemented for the CycleGAN-layout models (cycle_gan, dcl, dcdgan, "
                          f"cddgan), not --model {opt.model}: drop it")


def check_pseudo_warmup(opt: argparse.Namespace) -> None:
    """--pseudo_warmup ramps the pseudo-pair terms in: refused (not only warned about, since a
    warning scrolls away and the run then trains something else than asked) where there is no
    term to ramp, or where the ramp would not end before the run's iteration budget does (known
    here for --n_iters / --max_iters budgets; an epoch budget depends on the dataset's size)."""
    warmup = getattr(opt, "pseudo_warmup", 0)
    if not warmup:
        return
    if not (opt.lambda_pseudo > 0 or opt.pseudo_ssim > 0):
        raise OptionError(f"--pseudo_warmup {warmup} ramps in the pseudo-pair terms, which are off: give "
                          "--lambda_pseudo or --pseudo_ssim too, or drop --pseudo_warmup")
    budgets = [b for b in (opt.max_iters, opt.n_iters + opt.n_iters_decay or None) if b is not None]
    if budgets and warmup >= min(budgets):
        budget = min(budgets)
        raise OptionError(f"--pseudo_warmup {warmup} is not shorter than the run ({budget} iterations): the "
                          f"pseudo-pair terms would never reach their weight; give less (e.g. {max(1, budget // 4)})")


def training_flags() -> dict[str, bool]:
    """Every flag train.py takes, with those of every model and dataset ('--ngf', '--lambda_NCE', ...),
    and whether it may take a value: test.py accepts these and ignores them, so that a training
    command line works there."""
    flags: dict[str, bool] = {}
    for plugins, kind in ((models, "model"), (data, "dataset")):
        folder = Path(plugins.__file__).parent
        for path in sorted(folder.glob(f"*_{kind}.py")):
            parser = TrainOptions().initialize(argparse.ArgumentParser(add_help=False))
            if path.name != f"base_{kind}.py":
                plugins.get_option_setter(path.name[:-len(f"_{kind}.py")])(parser, True)
            flags.update((s, action.nargs != 0) for action in parser._actions for s in action.option_strings)
    return flags


def check_plugin_name(plugins, flag: str, name: str) -> None:
    """`name` is one of the plug-ins in the package's folder (base_model.py is none: it is what
    every model builds on)."""
    kind = flag.split("_")[0]  # model / dataset
    folder = Path(plugins.__file__).parent
    available = [p.name[:-len(f"_{kind}.py")] for p in sorted(folder.glob(f"*_{kind}.py"))
                 if p.name != f"base_{kind}.py"]
    if name in available:
        return
    if re.fullmatch(r"[a-z][a-z0-9_]*", name) and name != "base":
        raise ValueError(f"unknown --{flag} '{name}': no file {folder.name}/{name}_{kind}.py; choose one of "
                         f"{', '.join(available)}")
    raise ValueError(f"--{flag} '{name}' is not a {kind} name: choose one of {', '.join(available)}")


def check_generator(opt: argparse.Namespace) -> None:
    """The generator the options describe can be built and has the --nce_layers asked for.

    Built on the meta device: shapes only, no memory, no weights.
    """
    try:
        with torch.device("meta"):
            layers = len(generator_architecture(opt).model)
        wanted = parse_layers(opt.nce_layers) if hasattr(opt, "nce_layers") else []
    except ValueError as err:
        raise OptionError(str(err)) from err
    missing = sorted(layer for layer in wanted if not 0 <= layer < layers)
    if missing:
        raise OptionError(f"--nce_layers {opt.nce_layers}: --netG {opt.netG} has no layer {missing[0]} (it has "
                          f"layers 0..{layers - 1})")


def check_training_size(opt: argparse.Namespace) -> None:
    """The generator gives back a crop of --crop_size at its own size and the discriminator can
    judge it: a dry run on the meta device (shapes only, no memory)."""
    if "crop" not in opt.preprocess:
        return  # image sizes vary; test-time padding does not apply to training
    size = opt.crop_size
    with torch.device("meta"):
        generator = generator_architecture(opt)
        multiple = generator.size_multiple
        if size % multiple or size < 2 * multiple:
            raise OptionError(f"--crop_size {size}: the generators need a multiple of {multiple}, at least "
                              f"{2 * multiple} (e.g. --crop_size {max(2 * multiple, size - size % multiple)})")
        try:
            generator(torch.empty(1, opt.input_nc, size, size))
        except (RuntimeError, ValueError) as err:
            raise OptionError(f"--crop_size {size} is too small for --netG {opt.netG}: raise it") from err
        if opt.model in MODELS_WITHOUT_DISCRIMINATOR:
            return
        discriminator = build_discriminator(opt)
        try:
            discriminator(torch.empty(1, opt.output_nc, size, size))
        except (RuntimeError, ValueError) as err:
            depth = f"--netD {opt.netD}" + (f" --n_layers_D {opt.n_layers_D}" if opt.netD == "n_layers" else "")
            raise OptionError(f"{depth} cannot judge a {size}-pixel crop (it halves the crop once per layer): "
                              "lower --n_layers_D or raise --crop_size") from err
