# One-way relay latency by percentile (HDR style: the x axis stretches the tail).
load plotdir.'/common.gp'
set output outdir.'/latency.png'
set title 'One-way relay latency at a fixed 20,000 msg/s'
set xlabel 'percentile'
set ylabel 'latency'
set logscale x 10
set logscale y 10
set xrange [1:100000]
set xtics ('0%%' 1, '90%%' 10, '99%%' 100, '99.9%%' 1000, '99.99%%' 10000, '99.999%%' 100000)
set key top left
set ytics ('10 µs' 10, '100 µs' 100, '1 ms' 1000, '10 ms' 10000, '100 ms' 100000, '1 s' 1000000, '10 s' 10000000)
plot for [i=1:words(servers)] datadir.'/latency_'.word(servers,i).'.dat' \
     using (1/(1-$1)):($2 > 0 ? $2 : 1) with lines lw 2 lc rgb colour(word(servers,i)) title label(i)
