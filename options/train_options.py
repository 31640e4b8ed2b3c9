"""Training flags."""
from __future__ import annotations

from .base_options import BaseOptions, str2bool


class TrainOptions(BaseOptions):
    is_train = True

    def initialize(self, parser):
        parser = super().initialize(parser)
        g = parser.add_argument_group("display")
        g.add_argument("--display_id", type=int, default=1, help="visdom window id; 0 disables visdom")
        g.add_argument("--display_server", default="http://localhost", help="visdom server")
        g.add_argument("--display_port", type=int, default=8097, help="visdom port")
        g.add_argument("--display_env", default="", help="visdom environment (default: the run name)")
        g.add_argument("--display_ncols", type=int, default=4, help="images per row in the visdom grid")
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
        return parser
