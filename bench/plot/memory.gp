# Resident memory of each server against the idle registered connections it holds.
load plotdir.'/common.gp'
set output outdir.'/memory.png'
set title 'Server resident memory vs idle registered connections'
set xlabel 'connections held'
set ylabel 'RSS (MiB)'
set format x '%.0f'
set xrange [0:*]
set yrange [0:*]
plot for [i=1:words(servers)] datadir.'/memory_'.word(servers,i).'.dat' using 1:2 \
     with linespoints lw 2 pt 7 lc rgb colour(word(servers,i)) title label(i)
