// hydra's sweep over MPI ranks (the hydra::mpi target): MPI's start and end,
// the placement of models on ranks, the distributed sweep, and a checkpoint
// handed from one rank to all. Not part of
// hydra/hydra.hpp, so that only programs that use MPI need it.
#pragma once

#include "hydra/mpi/broadcast.hpp"
#include "hydra/mpi/distributed_sweep.hpp"
#include "hydra/mpi/environment.hpp"
#include "hydra/mpi/rank_placement.hpp"
