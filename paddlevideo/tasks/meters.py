"""Running averages and the log lines users grep (PaddleVideo's format: ``epoch:[  1/16 ] train step:...``,
``END epoch:...``)."""

import datetime


class AverageMeter:
    """Sum and count of a scalar; ``avg`` is the weighted mean."""

    def __init__(self):
        self.sum = 0.0
        self.count = 0

    def update(self, value, n=1):
        self.sum += float(value) * n
        self.count += n

    @property
    def avg(self):
        return self.sum / self.count if self.count else 0.0


def format_eta(seconds):
    """``h:mm:ss`` for a number of seconds (rounded down)."""
    return str(datetime.timedelta(seconds=int(max(seconds, 0))))


def train_step_line(epoch, epochs, step, loss, lr, top1, top5, batch_cost, reader_cost, ips, eta_seconds):
    """One ``log_interval`` line. ``epoch`` is 1-based; costs in seconds per batch; ips in clips/s."""
    return (f"epoch:[{epoch:3d}/{epochs:<3d}] train step:{step:<5d} loss: {loss:.5f} lr: {lr:.6f} "
            f"top1: {top1:.5f} top5: {top5:.5f} batch_cost: {batch_cost:.5f} sec, "
            f"reader_cost: {reader_cost:.5f} sec, ips: {ips:.5f} instance/sec eta: {format_eta(eta_seconds)}")


def epoch_end_line(epoch, mode, loss, top1, top5, batch_cost=None, reader_cost=None, ips=None):
    """``END epoch:N   train|val loss_avg: ... top1_avg: ... top5_avg: ...`` (+ costs for train)."""
    line = f"END epoch:{epoch:<3d} {mode:5s} loss_avg: {loss:.5f} top1_avg: {top1:.5f} top5_avg: {top5:.5f}"
    if batch_cost is not None:
        line += (f" avg_batch_cost: {batch_cost:.5f} sec, avg_reader_cost: {reader_cost:.5f} sec, "
                 f"avg_ips: {ips:.5f} instance/sec")
    return line
