"""Training flags: the shared ones, the networks, the data, and those of the chosen model and dataset."""
from __future__ import annotations

import argparse

import data
import models
from util.flags import str2bool

from .base_options import BaseOptions


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
        g.add_argument("--netG", default="resnet_9blocks", help="resnet_9blocks | resnet_6blocks | resnet_4blocks")
        g.add_argument("--netD", default="basic", help="basic (70x70 PatchGAN) | n_layers | pixel")
        g.add_argument("--n_layers_D", type=int, default=3, help="only used if netD == n_layers")
        g.add_argument("--normG", default="instance", help="instance | batch | none")
        g.add_argument("--normD", default="instance", help="instance | batch | none")
        g.add_argument("--init_type", default="xavier", help="normal | xavier | kaiming | orthogonal")
        g.add_argument("--init_gain", type=float, default=0.02)
        g.add_argument("--no_antialias", action="store_true", help="strided convs instead of blur-pool downsampling")
        g.add_argument("--no_antialias_up", action="store_true", help="transposed convs instead of blur upsampling")
        g.add_argument("--upsample_taps", type=int, default=4, choices=(4, 3),
                       help="binomial filter of the anti-aliased upsampling: 4 taps [1,3,3,1] as in the CUT "
                            "family; 3 taps [1,2,1] only to resume checkpoints made before this flag existed")
        g.add_argument("--global_residual", action="store_true",
                       help="generators add their output to their input (off in every paper here; "
                            "the short CPU demo uses it, see README 'Demo')")
        g.add_argument("--rain_layer", default="none", choices=("none", "leaky", "gray"),
                       help="leaky: generators output their input minus (G_A, restoring) or plus (G_B) a rain "
                            "layer that is non-negative up to a small leak (rain only brightens; domain A is the "
                            "rainy one); gray: the same layer, colourless (one value for R, G and B). none: as "
                            "--global_residual says")

        g = parser.add_argument_group("data")
        g.add_argument("--dataset_mode", default="unaligned", help="unaligned | single: data/<mode>_dataset.py")
        g.add_argument("--num_threads", type=int, default=2, help="DataLoader workers")
        g.add_argument("--batch_size", type=int, default=1)
        g.add_argument("--load_size", type=int, default=286, help="resize images to this size")
        g.add_argument("--crop_size", type=int, default=256, help="then crop to this size")
        g.add_argument("--max_dataset_size", type=int, default=None,
                       help="use at most this many images per domain (default: all)")
        g.add_argument("--preprocess", default="resize_and_crop",
                       help="resize_and_crop | crop | scale_width | scale_width_and_crop | none")
        g.add_argument("--no_flip", action="store_true", help="no random horizontal flips")
        g.add_argument("--serial_batches", action="store_true", help="take B images in order instead of at random")

        g = parser.add_argument_group("display")
        g.add_argument("--display_id", type=int, default=1, help="visdom window id; 0 disables visdom")
        g.add_argument("--display_server", default="http://localhost", help="visdom server")
        g.add_argument("--display_port", type=int, default=8097, help="visdom port")
        g.add_argument("--display_env", default="", help="visdom environment (default: the run name)")
        g.add_argument("--display_ncols", type=int, default=4, help="images per row in the visdom grid")
        g.add_argument("--display_winsize", type=int, default=256, help="display size in visdom and HTML")
        g.add_argument("--display_freq", type=int, default=400, help="show visuals every N iterations")
        g.add_argument("--update_html_freq", type=int, default=1000, help="save visuals to the HTML page every N iterations")
        g.add_argument("--print_freq", type=int, default=100, help="log losses every N iterations")
        g.add_argument("--no_html", action="store_true", help="do not write checkpoints/<name>/web/")

        g = parser.add_argument_group("saving and resuming")
        g.add_argument("--save_latest_freq", type=int, default=5000, help="save 'latest' every N iterations")
        g.add_argument("--save_epoch_freq", type=int, default=5, help="save '<epoch>' every N epochs")
        g.add_argument("--continue_train", action="store_true", help="resume from checkpoints/<name>/<epoch>.pt")
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
        g.add_argument("--gan_mode", default="lsgan", help="lsgan | vanilla | hinge")
        g.add_argument("--pool_size", type=int, default=50, help="image history shown to D; 0 disables")
        g.add_argument("--lr_policy", default="linear", help="linear | step | plateau | cosine")
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
        return parser

    def gather_options(self, argv: list[str] | None) -> argparse.Namespace:
        """Two-pass parse: the chosen model and dataset add their own flags and defaults."""
        parser = argparse.ArgumentParser(formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        parser = self.initialize(parser)
        known, _ = parser.parse_known_args(argv)
        parser = models.get_option_setter(known.model)(parser, self.is_train)
        known, _ = parser.parse_known_args(argv)
        parser = data.get_option_setter(known.dataset_mode)(parser, self.is_train)
        self.parser = parser
        return parser.parse_args(argv)
